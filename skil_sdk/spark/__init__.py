"""skil_sdk.spark."""
