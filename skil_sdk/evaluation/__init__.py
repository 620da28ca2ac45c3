"""Evaluation jobs: metrics computed per partition on the executors and merged on the driver."""
