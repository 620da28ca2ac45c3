"""The long-lived Spark session: ``skil-sdk session start|status|logs|stop``."""
