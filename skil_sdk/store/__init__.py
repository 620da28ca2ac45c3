"""Model and plugin artifacts, and the jobs database, under SKIL_HOME."""
