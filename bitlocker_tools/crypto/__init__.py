"""Keys and sectors: AES-CCM key unwrapping, key derivation, and sector ciphers per method."""
