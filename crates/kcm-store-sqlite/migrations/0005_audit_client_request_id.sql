-- kcm store schema, version 5.
-- An audit record may carry the id its client gave the request (the Kubernetes
-- API server's uid, an x-kcm-client-request-id header); older records have none.
ALTER TABLE audit_records ADD COLUMN client_request_id TEXT;
