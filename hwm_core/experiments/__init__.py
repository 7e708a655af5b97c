"""Many runs: comparisons and sweeps."""
