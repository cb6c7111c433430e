"""Keys: AES-CCM unwrapping, the password and recovery-password key derivation, and the FVEK
layout the sector cipher takes. Deals in bytes only: nothing here parses metadata."""
