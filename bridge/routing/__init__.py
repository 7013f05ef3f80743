"""Where calls go: transfer targets (allowlist), caller intents, queues over AMI, messages, outbound."""
