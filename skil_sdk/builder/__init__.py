"""skil_sdk.builder."""
