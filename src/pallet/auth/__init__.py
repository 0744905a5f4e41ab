"""Identities, tokens, permissions, the cluster CA and sealed secrets (issue 14).

``perms`` (pure) decides who may do what; ``tokens`` signs and checks JWTs; ``passwords``
hashes with Argon2id; ``service.AuthService`` keeps identities in the store; ``audit``
records every write; ``ca`` makes the cluster's certificates; ``secretbox`` seals secrets
with AES-GCM. Nothing here speaks HTTP: ``pallet.api.guard`` enforces it at the edge.
"""
