"""AMI side: a pure wire parser and one hardened adapter over panoramisk."""
