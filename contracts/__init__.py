"""The shared vocabulary: contract loader, typed models, schemas, idempotency key."""
