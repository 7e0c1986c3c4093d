"""The detectors we compare against, set up as their users would run them."""
