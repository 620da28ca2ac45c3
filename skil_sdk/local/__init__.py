"""The local engine: a job's tasks run by worker processes on this machine, without a JVM."""
