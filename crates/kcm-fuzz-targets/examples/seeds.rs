//! Writes the seed inputs of the fuzz targets into `fuzz/corpus/<target>/`, as
//! `seed-<name>` files: real inputs of each parser, made with the project's own
//! writers (signed requests, ciphertexts, archives, wrapped material, an audit
//! export of a real service) or copied from its fixtures and tests. Run it from
//! anywhere: `cargo run -p kcm-fuzz-targets --example seeds`. The fuzzers' own
//! finds sit beside the seeds, minimised (`scripts/fuzz --cmin`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, Uri};
use kcm_fuzz_targets::{aead_stream, backup_archive, byok, ciphertext, envelope, sigv4};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory");
    dir
}

fn write(target: &str, name: &str, data: impl AsRef<[u8]>) {
    let path = corpus(target).join(format!("seed-{name}"));
    std::fs::write(&path, data).expect("a seed file");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A request in the text form of the `sigv4` target.
fn request_text(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {uri}\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// A request to sign: (seed name, method, URI, extra headers, body).
type RequestCase = (
    &'static str,
    Method,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [u8],
);

fn sigv4_seeds() {
    let creds = kcm_sigv4::Credentials::new(sigv4::ACCESS_KEY_ID, sigv4::SECRET);
    let cases: [RequestCase; 6] = [
        (
            "encrypt",
            Method::POST,
            "http://127.0.0.1:8443/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "TrentService.Encrypt"),
            ],
            br#"{"KeyId":"alias/app","Plaintext":"aGVsbG8="}"#,
        ),
        (
            "rest-get-query",
            Method::GET,
            "http://localhost:8443/v1/audit/records?limit=10&after=3&from=2026-12-01T10%3A00%3A00Z",
            &[("x-kcm-client-request-id", "req-1")],
            b"",
        ),
        (
            "path-dots-and-spaces",
            Method::PUT,
            "http://localhost/v1/./tenants/../tenants/a%20b/c~d//e/",
            &[
                ("content-type", "application/json"),
                ("x-amz-meta-note", "  two   spaces  "),
            ],
            br#"{"name":"t"}"#,
        ),
        (
            "repeated-header",
            Method::POST,
            "https://kms.example:443/",
            &[
                ("x-amz-target", "TrentService.ListKeys"),
                ("x-amz-meta-a", "1"),
            ],
            b"{}",
        ),
        (
            "payload-hash",
            Method::POST,
            "http://127.0.0.1:8443/",
            &[(
                "x-amz-content-sha256",
                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            )],
            b"{}",
        ),
        (
            "empty-query-values",
            Method::DELETE,
            "http://127.0.0.1:8443/v1/keys/1?b=&a&a=%2F&c=%zz",
            &[],
            b"",
        ),
    ];
    for (name, method, uri, extra, body) in cases {
        let uri: Uri = uri.parse().expect("a URI");
        let mut headers = HeaderMap::new();
        for (n, v) in extra {
            headers.append(
                http::HeaderName::from_static(n),
                HeaderValue::from_str(v).expect("a header value"),
            );
        }
        kcm_sigv4::sign(
            &method,
            &uri,
            &mut headers,
            body,
            &creds,
            sigv4::REGION,
            sigv4::SERVICE,
            sigv4::now(),
        )
        .expect("sign");
        write("sigv4", name, request_text(&method, &uri, &headers, body));
        if name == "encrypt" {
            let mut tampered = headers.clone();
            tampered.insert(
                "x-amz-target",
                HeaderValue::from_static("TrentService.Decrypt"),
            );
            write(
                "sigv4",
                "tampered",
                request_text(&method, &uri, &tampered, body),
            );
            let mut token = headers.clone();
            token.insert("x-amz-security-token", HeaderValue::from_static("abc"));
            write(
                "sigv4",
                "session-token",
                request_text(&method, &uri, &token, body),
            );
            let mut dated = headers.clone();
            dated.remove("x-amz-date");
            dated.insert(
                "date",
                HeaderValue::from_static("Sun, 01 Nov 2026 12:00:00 GMT"),
            );
            write(
                "sigv4",
                "http-date",
                request_text(&method, &uri, &dated, body),
            );
        }
    }
    write(
        "sigv4",
        "malformed-authorization",
        "POST /\nhost: h\nx-amz-date: 20261101T120000Z\nauthorization: AWS4-HMAC-SHA256 Credential=AK/20261101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz\n\n{}",
    );
}

const AWS_OPS: &[(&str, &str, &str)] = &[
    (
        "create-key",
        "CreateKey",
        r#"{"KeySpec":"SYMMETRIC_DEFAULT","KeyUsage":"ENCRYPT_DECRYPT","Description":"d","Tags":[{"TagKey":"k","TagValue":"v"}],"Policy":"{\"Version\":\"kcm-2026-11\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\"}]}"}"#,
    ),
    (
        "describe-key",
        "DescribeKey",
        r#"{"KeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "describe-key-arn",
        "DescribeKey",
        r#"{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
    ),
    (
        "describe-alias-arn",
        "DescribeKey",
        r#"{"KeyId":"arn:aws:kms:us-east-1:000000000000:alias/fuzz-sym"}"#,
    ),
    ("list-keys", "ListKeys", r#"{"Limit":10,"Marker":"abc"}"#),
    (
        "update-description",
        "UpdateKeyDescription",
        r#"{"KeyId":"alias/fuzz-sym","Description":"new"}"#,
    ),
    ("enable-key", "EnableKey", r#"{"KeyId":"alias/fuzz-sym"}"#),
    ("disable-key", "DisableKey", r#"{"KeyId":"alias/fuzz-sym"}"#),
    (
        "schedule-deletion",
        "ScheduleKeyDeletion",
        r#"{"KeyId":"alias/fuzz-sym","PendingWindowInDays":7}"#,
    ),
    (
        "cancel-deletion",
        "CancelKeyDeletion",
        r#"{"KeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "create-alias",
        "CreateAlias",
        r#"{"AliasName":"alias/new","TargetKeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "update-alias",
        "UpdateAlias",
        r#"{"AliasName":"alias/fuzz-sym","TargetKeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
    ),
    (
        "delete-alias",
        "DeleteAlias",
        r#"{"AliasName":"alias/fuzz-sym"}"#,
    ),
    (
        "list-aliases",
        "ListAliases",
        r#"{"KeyId":"alias/fuzz-sym","Limit":5}"#,
    ),
    (
        "tag-resource",
        "TagResource",
        r#"{"KeyId":"alias/fuzz-sym","Tags":[{"TagKey":"a","TagValue":"b"}]}"#,
    ),
    (
        "untag-resource",
        "UntagResource",
        r#"{"KeyId":"alias/fuzz-sym","TagKeys":["a"]}"#,
    ),
    (
        "list-tags",
        "ListResourceTags",
        r#"{"KeyId":"alias/fuzz-sym","Limit":50}"#,
    ),
    (
        "encrypt",
        "Encrypt",
        r#"{"KeyId":"alias/fuzz-sym","Plaintext":"aGVsbG8gd29ybGQ=","EncryptionContext":{"purpose":"test","n":"1"}}"#,
    ),
    (
        "encrypt-rsa",
        "Encrypt",
        r#"{"KeyId":"alias/fuzz-rsa","Plaintext":"aGVsbG8=","EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}"#,
    ),
    (
        "decrypt-rsa",
        "Decrypt",
        r#"{"KeyId":"alias/fuzz-rsa","CiphertextBlob":"AAAA","EncryptionAlgorithm":"RSAES_OAEP_SHA_1"}"#,
    ),
    (
        "re-encrypt",
        "ReEncrypt",
        r#"{"CiphertextBlob":"AQ==","DestinationKeyId":"alias/fuzz-sym","SourceEncryptionContext":{"a":"b"},"DestinationEncryptionContext":{"c":"d"}}"#,
    ),
    (
        "generate-data-key",
        "GenerateDataKey",
        r#"{"KeyId":"alias/fuzz-sym","KeySpec":"AES_256","EncryptionContext":{"a":"b"}}"#,
    ),
    (
        "generate-data-key-bytes",
        "GenerateDataKey",
        r#"{"KeyId":"alias/fuzz-sym","NumberOfBytes":64}"#,
    ),
    (
        "generate-data-key-wp",
        "GenerateDataKeyWithoutPlaintext",
        r#"{"KeyId":"alias/fuzz-sym","KeySpec":"AES_128"}"#,
    ),
    (
        "generate-random",
        "GenerateRandom",
        r#"{"NumberOfBytes":32}"#,
    ),
    (
        "generate-data-key-pair",
        "GenerateDataKeyPair",
        r#"{"KeyId":"alias/fuzz-sym","KeyPairSpec":"ECC_NIST_P256"}"#,
    ),
    (
        "generate-data-key-pair-wp",
        "GenerateDataKeyPairWithoutPlaintext",
        r#"{"KeyId":"alias/fuzz-sym","KeyPairSpec":"RSA_2048"}"#,
    ),
    (
        "sign",
        "Sign",
        r#"{"KeyId":"alias/fuzz-sign","Message":"aGVsbG8=","MessageType":"RAW","SigningAlgorithm":"ECDSA_SHA_256"}"#,
    ),
    (
        "sign-digest",
        "Sign",
        r#"{"KeyId":"alias/fuzz-sign","Message":"LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=","MessageType":"DIGEST","SigningAlgorithm":"ECDSA_SHA_256"}"#,
    ),
    (
        "verify",
        "Verify",
        r#"{"KeyId":"alias/fuzz-sign","Message":"aGVsbG8=","Signature":"MEUCIQDu","SigningAlgorithm":"ECDSA_SHA_256"}"#,
    ),
    (
        "get-public-key",
        "GetPublicKey",
        r#"{"KeyId":"alias/fuzz-sign"}"#,
    ),
    (
        "generate-mac",
        "GenerateMac",
        r#"{"KeyId":"alias/fuzz-hmac","Message":"aGVsbG8=","MacAlgorithm":"HMAC_SHA_256"}"#,
    ),
    (
        "verify-mac",
        "VerifyMac",
        r#"{"KeyId":"alias/fuzz-hmac","Message":"aGVsbG8=","Mac":"AAAA","MacAlgorithm":"HMAC_SHA_256"}"#,
    ),
    (
        "derive-shared-secret",
        "DeriveSharedSecret",
        r#"{"KeyId":"alias/fuzz-ecdh","KeyAgreementAlgorithm":"ECDH","PublicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAAAA"}"#,
    ),
    (
        "enable-rotation",
        "EnableKeyRotation",
        r#"{"KeyId":"alias/fuzz-sym","RotationPeriodInDays":90}"#,
    ),
    (
        "disable-rotation",
        "DisableKeyRotation",
        r#"{"KeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "rotation-status",
        "GetKeyRotationStatus",
        r#"{"KeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "rotate-now",
        "RotateKeyOnDemand",
        r#"{"KeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "list-rotations",
        "ListKeyRotations",
        r#"{"KeyId":"alias/fuzz-sym","Limit":1000}"#,
    ),
    (
        "get-policy",
        "GetKeyPolicy",
        r#"{"KeyId":"alias/fuzz-sym","PolicyName":"default"}"#,
    ),
    (
        "put-policy",
        "PutKeyPolicy",
        r#"{"KeyId":"alias/fuzz-sym","PolicyName":"default","Policy":"{\"Version\":\"kcm-2026-11\",\"Statement\":[{\"Effect\":\"Deny\",\"Principal\":\"role:auditor\",\"Action\":[\"kms:Decrypt\"]}]}"}"#,
    ),
    (
        "list-policies",
        "ListKeyPolicies",
        r#"{"KeyId":"alias/fuzz-sym"}"#,
    ),
    (
        "create-grant",
        "CreateGrant",
        r#"{"KeyId":"alias/fuzz-sym","GranteePrincipal":"KCMAPPAAAAAAAAAAAAAA","Operations":["Encrypt","Decrypt"],"Name":"g"}"#,
    ),
    (
        "list-grants",
        "ListGrants",
        r#"{"KeyId":"alias/fuzz-sym","GrantId":"abc","Limit":10}"#,
    ),
    (
        "list-retirable-grants",
        "ListRetirableGrants",
        r#"{"RetiringPrincipal":"KCMAPPAAAAAAAAAAAAAA"}"#,
    ),
    (
        "retire-grant",
        "RetireGrant",
        r#"{"KeyId":"alias/fuzz-sym","GrantId":"abc"}"#,
    ),
    (
        "revoke-grant",
        "RevokeGrant",
        r#"{"KeyId":"alias/fuzz-sym","GrantId":"abc"}"#,
    ),
    (
        "get-import-parameters",
        "GetParametersForImport",
        r#"{"KeyId":"alias/fuzz-ext","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}"#,
    ),
    (
        "import-key-material",
        "ImportKeyMaterial",
        r#"{"KeyId":"alias/fuzz-ext","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}"#,
    ),
    (
        "delete-imported",
        "DeleteImportedKeyMaterial",
        r#"{"KeyId":"alias/fuzz-ext"}"#,
    ),
    (
        "dry-run",
        "Encrypt",
        r#"{"KeyId":"alias/fuzz-sym","Plaintext":"aGk=","DryRun":true}"#,
    ),
    ("unknown-op", "CreateCustomKeyStore", r#"{}"#),
];

fn aws_json_seeds() {
    for (name, op, body) in AWS_OPS {
        write("aws_json", name, format!("{op}\n{body}"));
    }
    // A blob in kcm's ciphertext format (of a key the fixture does not hold).
    let blob = kcm_core::crypto::encrypt_data(
        &kcm_core::secret::SecretBytes::copy_from(&ciphertext::VERSION_KEY),
        kcm_core::crypto::CiphertextHeader {
            key_id: kcm_core::model::KeyId(uuid::Uuid::from_u128(ciphertext::SEED_KEY_ID)),
            key_version: 1,
        },
        b"hello",
        b"",
    );
    write(
        "aws_json",
        "decrypt",
        format!(
            r#"Decrypt
{{"CiphertextBlob":"{}","EncryptionContext":{{"purpose":"test"}}}}"#,
            b64(&blob)
        ),
    );
}

fn ciphertext_seeds() {
    use kcm_core::crypto::{encrypt_data, CiphertextHeader};
    let key = kcm_core::secret::SecretBytes::copy_from(&ciphertext::VERSION_KEY);
    let header = |version| CiphertextHeader {
        key_id: kcm_core::model::KeyId(uuid::Uuid::from_u128(ciphertext::SEED_KEY_ID)),
        key_version: version,
    };
    write(
        "ciphertext",
        "empty",
        encrypt_data(&key, header(1), b"", b""),
    );
    write(
        "ciphertext",
        "data-key",
        encrypt_data(&key, header(2), &[0x5a; 32], b""),
    );
    let context = kcm_core::crypto::canonical_context(
        &[("purpose".to_owned(), "backup".to_owned())]
            .into_iter()
            .collect(),
    );
    let mut with_context = context.clone();
    with_context.push(0xff);
    with_context.extend(encrypt_data(&key, header(3), b"hello", &context));
    write("ciphertext", "with-context", with_context);
}

fn aead_stream_seeds() {
    use kcm_aead_stream::{ChunkSize, NoncePrefix, Stream, StreamKey};
    for (size, len) in [(16u16, 40usize), (16, 32), (1, 3), (64, 0)] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(&(len as u64).to_be_bytes());
        Stream::new(
            StreamKey::new(&aead_stream::KEY).expect("key"),
            NoncePrefix::from_bytes(aead_stream::PREFIX),
            ChunkSize::new(u32::from(size)).expect("size"),
            aead_stream::AAD,
        )
        .encrypt(&mut &plaintext[..], &mut out, |_| {})
        .expect("encrypt");
        write("aead_stream", &format!("chunk{size}-{len}"), out);
    }
}

fn backup_seeds() {
    write(
        "backup_archive",
        "v1-chunk64.kcmbak",
        backup_archive::TEST_ARCHIVE,
    );
    // Its plaintext, the snapshot as JSON, which the target seals itself.
    let payload = {
        use kcm_aead_stream::{ChunkSize, NoncePrefix, Stream, StreamKey};
        let reader = kcm_core::backup::ArchiveReader::open(backup_archive::TEST_ARCHIVE)
            .expect("the test archive");
        let h = reader.header();
        let json = serde_json::to_vec(h).expect("header");
        let mut raw = kcm_core::backup::MAGIC.to_vec();
        raw.extend_from_slice(&(json.len() as u32).to_be_bytes());
        raw.extend_from_slice(&json);
        let body = &backup_archive::TEST_ARCHIVE[raw.len() + 32..];
        let prefix: [u8; 7] = hex::decode(&h.nonce_prefix)
            .expect("hex")
            .try_into()
            .expect("7 bytes");
        let mut out = Vec::new();
        Stream::new(
            StreamKey::new(&backup_archive::ARCHIVE_KEY).expect("key"),
            NoncePrefix::from_bytes(prefix),
            ChunkSize::new(h.chunk_size).expect("size"),
            &raw,
        )
        .decrypt_exact(h.payload_len, &mut &body[..], &mut out, |_| {})
        .expect("the test archive decrypts");
        out
    };
    write("backup_archive", "v1-chunk64-snapshot.json", &payload);
}

fn envelope_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kcm-client/src/envelope/testdata");
    for entry in std::fs::read_dir(dir).expect("the envelope testdata") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        write(
            "envelope",
            &name,
            std::fs::read(&path).expect("a test envelope"),
        );
    }
    let _ = envelope::DATA_KEY;
}

fn audit_seeds() {
    use kcm_core::audit::export::ExportLine;
    use kcm_core::audit::AuditEvent;
    use kcm_core::model::{AuditOutcome, AuditQuery};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let f = kcm_test_support::service::ServiceFixture::new().await;
        for (i, (operation, outcome, error)) in [
            ("CreateKey", AuditOutcome::Success, None),
            ("Encrypt", AuditOutcome::Failed, Some("NotFoundException")),
            (
                "Decrypt",
                AuditOutcome::Denied,
                Some("AccessDeniedException"),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let caller = f.admin();
            f.service
                .record_audit(AuditEvent {
                    front_door: "aws",
                    operation,
                    request_id: &format!("req-{i}"),
                    source: Some("127.0.0.1".into()),
                    client_request_id: (i == 1).then_some("client-1"),
                    detail: None,
                    caller: Some(&caller),
                    claimed_access_key: None,
                    outcome,
                    error,
                })
                .await
                .expect("an audit record");
        }
        f.service
            .write_audit_checkpoints()
            .await
            .expect("checkpoints");
        let admin = f.admin();
        let records = f
            .service
            .list_audit_records(
                &admin,
                AuditQuery {
                    tenant: None,
                    after_seq: 0,
                    limit: 1000,
                    from: None,
                    to: None,
                    key: None,
                    principal: None,
                    operation: None,
                },
            )
            .await
            .expect("records");
        let checkpoints = f
            .service
            .list_audit_checkpoints(&admin, 0, 1000)
            .await
            .expect("checkpoints");
        let mut export = Vec::new();
        for r in records {
            serde_json::to_writer(&mut export, &ExportLine::Record(Box::new(r))).expect("json");
            export.push(b'\n');
        }
        for c in checkpoints {
            serde_json::to_writer(&mut export, &ExportLine::Checkpoint(c)).expect("json");
            export.push(b'\n');
        }
        write("audit_export", "export.jsonl", &export);
        let text = String::from_utf8(export).expect("UTF-8");
        write(
            "audit_export",
            "altered.jsonl",
            text.replacen("Encrypt", "Decrypt", 1),
        );
        let lines: Vec<&str> = text.lines().collect();
        let mut reordered = lines.clone();
        reordered.swap(0, 1);
        write("audit_export", "reordered.jsonl", reordered.join("\n"));
        write("audit_export", "removed.jsonl", lines[1..].join("\n"));
    });
}

fn policy_seeds() {
    let v = kcm_core::policy::KCM_POLICY_VERSION;
    let seeds = [
        (
            "aws-default",
            kcm_core::policy::KeyPolicy::default_document("111122223333"),
        ),
        (
            "aws-conditions",
            r#"{"Version":"2012-10-17","Id":"c","Statement":[{"Sid":"Use","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/key-user","arn:aws:iam::111122223333:user/KCMFUZZ0000000000001"]},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":["orders","billing"]},"ForAllValues:StringLike":{"kms:EncryptionContextKeys":"a*"},"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"Bool":{"aws:SecureTransport":"true"}}},{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"NotAction":"kms:Describe*","NotResource":"arn:aws:kms:*:111122223333:key/*","Condition":{"Null":{"kms:RequestAlias":"false"},"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/KCM?*"},"NumericGreaterThan":{"aws:EpochTime":1}}}]}"#.to_owned(),
        ),
        (
            "access-key",
            format!(
                r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"KCMAPPAAAAAAAAAAAAAA","Action":["kms:Encrypt","Decrypt"]}}]}}"#
            ),
        ),
        (
            "deny-and-allow",
            format!(
                r#"{{"Version":"{v}","Statement":[{{"Sid":"NoAuditors","Effect":"Deny","Principal":["role:auditor","KCMOTHERAAAAAAAAAAAA"],"Action":"kms:*"}},{{"Effect":"Allow","Principal":"role:key-admin","Action":["DescribeKey","PutKeyPolicy","CreateGrant"]}}]}}"#
            ),
        ),
        (
            "deny-all",
            format!(
                r#"{{"Version":"{v}","Statement":[{{"Effect":"Deny","Principal":"*","Action":"*"}}]}}"#
            ),
        ),
        (
            "wrong-version",
            r#"{"Version":"2012-10-18","Statement":[]}"#.to_owned(),
        ),
        (
            "unknown-action",
            format!(
                r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"*","Action":"Fly"}}]}}"#
            ),
        ),
        (
            "condition",
            format!(
                r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"*","Action":"*","Condition":{{"StringEqualz":{{}}}}}}]}}"#
            ),
        ),
    ];
    for (name, document) in seeds {
        write("key_policy", name, document);
    }
}

fn byok_seeds() {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
    let key = byok::wrapping_key();
    let public = OaepPublicEncryptingKey::new(key.public_key()).expect("OAEP key");
    let oaep = |plain: &[u8]| {
        let mut out = vec![0u8; public.ciphertext_size()];
        public
            .encrypt(&OAEP_SHA256_MGF1SHA256, plain, &mut out, None)
            .expect("OAEP")
            .to_vec()
    };
    let material = [0x42u8; 32];
    let mut seed = b"RSAES_OAEP_SHA_256\n".to_vec();
    seed.extend(oaep(&material));
    write("byok", "oaep", seed);
    let mut seed = b"RSAES_OAEP_SHA_256\n".to_vec();
    seed.extend(oaep(&material[..16]));
    write("byok", "oaep-short-material", seed);
    let kek = [0x24u8; 32];
    let mut wrapped = vec![0u8; material.len() + 16];
    let n = AesKek::new(&AES_256, &kek)
        .expect("KEK")
        .wrap_with_padding(&material, &mut wrapped)
        .expect("KWP")
        .len();
    let mut seed = b"RSA_AES_KEY_WRAP_SHA_256\n".to_vec();
    seed.extend(oaep(&kek));
    seed.extend_from_slice(&wrapped[..n]);
    write("byok", "rsa-aes-key-wrap", seed);
    write("byok", "key-spec", "RSA_4096\n");
}

fn barbican_seeds() {
    let seeds: &[(&str, &str)] = &[
        ("secret-text", r#"secret
{"name":"s","payload":"hello","payload_content_type":"text/plain"}"#),
        ("secret-base64", r#"secret
{"name":"k","payload":"c2VjcmV0IGJ5dGVz","payload_content_type":"application/octet-stream","payload_content_encoding":"base64","algorithm":"aes","bit_length":256,"mode":"cbc","secret_type":"symmetric","expiration":"2030-01-01T00:00:00Z"}"#),
        ("secret-metadata-only", "secret\n{\"name\":\"later\"}"),
        ("secret-transport-key", "secret\n{\"payload\":\"x\",\"payload_content_type\":\"text/plain\",\"transport_key_needed\":\"true\"}"),
        ("container-generic", r#"container
{"type":"generic","name":"bundle","secret_refs":[{"name":"a","secret_ref":"http://127.0.0.1:9311/v1/secrets/1234abcd-12ab-34cd-56ef-1234567890ab"}]}"#),
        ("container-rsa", r#"container
{"type":"rsa","secret_refs":[{"name":"private_key","secret_ref":"1234abcd-12ab-34cd-56ef-1234567890ab"},{"name":"public_key","secret_ref":"1234abcd-12ab-34cd-56ef-1234567890ac"}]}"#),
        ("order-key", r#"order
{"type":"key","meta":{"name":"vol","algorithm":"aes","bit_length":256,"mode":"cbc","payload_content_type":"application/octet-stream"}}"#),
        ("order-asymmetric", r#"order
{"type":"asymmetric","meta":{"name":"pair","algorithm":"rsa","bit_length":2048,"pass_phrase":"p"}}"#),
        ("order-certificate", "order\n{\"type\":\"certificate\",\"meta\":{\"request_type\":\"simple-cmc\"}}"),
        ("acl", "acl\n{\"read\":{\"users\":[\"u2\"],\"project-access\":false}}"),
        ("acl-project", "acl\n{\"read\":{\"project-access\":true}}"),
        ("consumer", "consumer\n{\"service\":\"image\",\"resource_type\":\"image\",\"resource_id\":\"i1\"}"),
        ("container-consumer", "container_consumer\n{\"name\":\"lbaas\",\"URL\":\"http://lb/listeners/1\"}"),
        ("payload-json-base64", "payload_json\napplication/octet-stream\nbase64\nAAECAwQ="),
        ("payload-json-text", "payload_json\ntext/plain; charset=utf-8\n\nhello"),
        ("payload-put", "payload_put\napplication/octet-stream\nbase64\nAAEC\n"),
        ("payload-put-text", "payload_put\ntext/plain\n\nplain text"),
        ("accept", "accept\ntext/plain;q=0.9, application/octet-stream\n\u{0}\u{1}"),
        ("accept-any", "accept\n*/*\nbytes"),
        ("paging", "paging\n20\n5\n100"),
        ("paging-lenient", "paging\n-3\nx\n7"),
        ("headers", "headers\nOpenStack-API-Version: key-manager 1.1\ncontent-type: Application/JSON; charset=utf-8\nhost: barbican.example:9311"),
        ("headers-latest", "headers\nopenstack-api-version: compute 2.1, key-manager latest\nhost: [::1]:9311"),
        ("ref", "ref\nhttp://127.0.0.1:9311/v1/secrets/1234abcd-12ab-34cd-56ef-1234567890ab/"),
    ];
    for (name, seed) in seeds {
        write("barbican", name, seed);
    }
}

fn k8s_seeds() {
    use kcm_k8s_kms::proto::{DecryptRequest, EncryptRequest, StatusRequest};
    use prost::Message;
    let mut seed = vec![0u8];
    seed.extend(
        EncryptRequest {
            plaintext: vec![0x11; 32],
            uid: "5f3b8a4e-0f6b-4c1e-9d7a-3c2b1a0f9e8d".into(),
        }
        .encode_to_vec(),
    );
    write("k8s_kms", "encrypt", seed);
    let mut seed = vec![1u8];
    seed.extend(
        DecryptRequest {
            ciphertext: b"kcm-fuzz\x11\x11\x11\x11".to_vec(),
            uid: "uid-2".into(),
            key_id: "arn:aws:kms:us-east-1:111122223333:key/1234:1".into(),
            annotations: [("kms.kcm.io/v".to_owned(), b"1".to_vec())]
                .into_iter()
                .collect(),
        }
        .encode_to_vec(),
    );
    write("k8s_kms", "decrypt", seed);
    let mut seed = vec![2u8];
    seed.extend(StatusRequest {}.encode_to_vec());
    write("k8s_kms", "status", seed);
}

fn xks_seeds() {
    let metadata = r#""requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/Alice","kmsKeyArn":"arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab","kmsOperation":"Encrypt","kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae","kmsViaService":"ebs"}"#;
    let seeds: [(&str, String); 4] = [
        (
            "encrypt",
            format!(
                "/fuzz/kms/xks/v1/keys/xks-1/encrypt\n{{{metadata},\"additionalAuthenticatedData\":\"cHJvamVjdD1uaWxl\",\"plaintext\":\"SGVsbG8gV29ybGQh\",\"encryptionAlgorithm\":\"AES_GCM\",\"ciphertextDataIntegrityValueAlgorithm\":\"SHA_256\"}}"
            ),
        ),
        (
            "decrypt",
            format!(
                "/fuzz/kms/xks/v1/keys/1234abcd-12ab-34cd-56ef-1234567890ab/decrypt\n{{{metadata},\"ciphertext\":\"ghxkK1txeDNn3q8Y\",\"ciphertextMetadata\":\"AQAAAAEGU8nQ+r7sMCIFESJQ/ME=\",\"encryptionAlgorithm\":\"AES_GCM\",\"initializationVector\":\"HMrlRw85cAJUd5Ax\",\"authenticationTag\":\"vBxN2ncH1oEkR8WVXpmyYQ==\"}}"
            ),
        ),
        (
            "metadata",
            format!("/fuzz/kms/xks/v1/keys/xks-1/metadata\n{{{metadata}}}"),
        ),
        (
            "health",
            "/fuzz/kms/xks/v1/health\n{\"requestMetadata\":{\"kmsRequestId\":\"h\",\"kmsOperation\":\"KmsHealthCheck\"}}".to_string(),
        ),
    ];
    for (name, seed) in seeds {
        write("xks", name, seed);
    }
}

fn kmip_seeds() {
    use kcm_kmip::ttlv::{encode, Tag, Ttlv, Value};
    let tag = |t: u32| Tag::new(t);
    // A KMIP 1.0 Locate by Name then Get, as Ceph's RADOS Gateway sends them, and a
    // DiscoverVersions: request message, header (version, batch count), batch item.
    let header = |batch: i32| {
        Ttlv::new(
            tag(0x42_0077),
            Value::Structure(vec![
                Ttlv::new(
                    tag(0x42_0069),
                    Value::Structure(vec![
                        Ttlv::new(tag(0x42_006A), Value::Integer(1)),
                        Ttlv::new(tag(0x42_006B), Value::Integer(0)),
                    ]),
                ),
                Ttlv::new(tag(0x42_000D), Value::Integer(batch)),
            ]),
        )
    };
    let item = |operation: u32, payload: Vec<Ttlv>| {
        Ttlv::new(
            tag(0x42_000F),
            Value::Structure(vec![
                Ttlv::new(tag(0x42_005C), Value::Enumeration(operation)),
                Ttlv::new(tag(0x42_0079), Value::Structure(payload)),
            ]),
        )
    };
    let name = Ttlv::new(
        tag(0x42_0008),
        Value::Structure(vec![
            Ttlv::new(tag(0x42_000A), Value::TextString("Name".into())),
            Ttlv::new(
                tag(0x42_000B),
                Value::Structure(vec![
                    Ttlv::new(tag(0x42_0055), Value::TextString("rgw-bucket-key".into())),
                    Ttlv::new(tag(0x42_0054), Value::Enumeration(1)),
                ]),
            ),
        ]),
    );
    let request = |operation: u32, payload: Vec<Ttlv>| {
        encode(&Ttlv::new(
            tag(0x42_0078),
            Value::Structure(vec![header(1), item(operation, payload)]),
        ))
    };
    write("kmip_ttlv", "locate", request(0x08, vec![name.clone()]));
    write(
        "kmip_ttlv",
        "get",
        request(
            0x0A,
            vec![Ttlv::new(tag(0x42_0094), Value::TextString("1".into()))],
        ),
    );
    write("kmip_ttlv", "discover-versions", request(0x1E, vec![]));
    // The payloads of the operations that read more than an identifier: an
    // AES-GCM Encrypt, a Sign, a MAC Verify, a Create Key Pair with its
    // templates, and the Register of a private key.
    let id = || Ttlv::new(tag(0x42_0094), Value::TextString("1".into()));
    let bytes = |t: u32, b: &[u8]| Ttlv::new(tag(t), Value::ByteString(b.to_vec().into()));
    let parameters = |items: Vec<Ttlv>| Ttlv::new(tag(0x42_002B), Value::Structure(items));
    let enumeration = |t: u32, v: u32| Ttlv::new(tag(t), Value::Enumeration(v));
    write(
        "kmip_ttlv",
        "encrypt-gcm",
        request(
            0x1F,
            vec![
                id(),
                parameters(vec![enumeration(0x42_0011, 9)]),
                bytes(0x42_00C2, b"plaintext"),
                bytes(0x42_003D, &[0; 12]),
                bytes(0x42_00FE, b"aad"),
            ],
        ),
    );
    write(
        "kmip_ttlv",
        "sign",
        request(
            0x21,
            vec![
                id(),
                parameters(vec![enumeration(0x42_005F, 10), enumeration(0x42_0038, 6)]),
                bytes(0x42_00C2, b"message"),
            ],
        ),
    );
    write(
        "kmip_ttlv",
        "mac-verify",
        request(
            0x24,
            vec![
                id(),
                parameters(vec![enumeration(0x42_0028, 9)]),
                bytes(0x42_00C2, b"message"),
                bytes(0x42_00C6, &[0; 32]),
            ],
        ),
    );
    let template = |t: u32, attributes: Vec<Ttlv>| Ttlv::new(tag(t), Value::Structure(attributes));
    let attribute = |n: &str, v: Value| {
        Ttlv::new(
            tag(0x42_0008),
            Value::Structure(vec![
                Ttlv::new(tag(0x42_000A), Value::TextString(n.into())),
                Ttlv::new(tag(0x42_000B), v),
            ]),
        )
    };
    write(
        "kmip_ttlv",
        "create-key-pair",
        request(
            0x02,
            vec![
                template(
                    0x42_001F,
                    vec![
                        attribute("Cryptographic Algorithm", Value::Enumeration(4)),
                        attribute("Cryptographic Length", Value::Integer(2048)),
                    ],
                ),
                template(0x42_0065, vec![name.clone()]),
                template(
                    0x42_006E,
                    vec![attribute("x-owner", Value::TextString("a".into()))],
                ),
            ],
        ),
    );
    write(
        "kmip_ttlv",
        "register-private-key",
        request(
            0x03,
            vec![
                enumeration(0x42_0057, 4),
                Ttlv::new(
                    tag(0x42_0064),
                    Value::Structure(vec![Ttlv::new(
                        tag(0x42_0040),
                        Value::Structure(vec![
                            enumeration(0x42_0042, 4),
                            Ttlv::new(
                                tag(0x42_0045),
                                Value::Structure(vec![bytes(0x42_0043, &[0x30, 0x03, 2, 1, 0])]),
                            ),
                            enumeration(0x42_0028, 4),
                            Ttlv::new(tag(0x42_002A), Value::Integer(2048)),
                        ]),
                    )]),
                ),
            ],
        ),
    );
}

/// Vault API requests as hvac and Ceph's RADOS Gateway send them, one of them with
/// a real kcm ciphertext in Vault's form.
fn vault_seeds() {
    use kcm_core::crypto::{encrypt_data, CiphertextHeader};
    let header = CiphertextHeader {
        key_id: kcm_core::model::KeyId::new_random(),
        key_version: 3,
    };
    let key = kcm_core::secret::SecretBytes::new(vec![7; 32]);
    let blob = encrypt_data(&key, header, b"plaintext", b"");
    let ciphertext = format!("vault:v3:{}", b64(&blob));
    write(
        "vault",
        "encrypt",
        "POST /v1/transit/encrypt/orders\n{\"plaintext\":\"aGVsbG8=\",\"context\":\"Y3R4\"}",
    );
    write(
        "vault",
        "decrypt",
        format!("POST /v1/transit/decrypt/orders\n{{\"ciphertext\":\"{ciphertext}\",\"context\":\"Y3R4\"}}"),
    );
    write(
        "vault",
        "batch",
        format!("POST /v1/transit/decrypt/orders\n{{\"batch_input\":[{{\"ciphertext\":\"{ciphertext}\"}},{{\"ciphertext\":\"vault:v1:AAAA\"}}]}}"),
    );
    write(
        "vault",
        "datakey",
        "POST /v1/transit/datakey/plaintext/orders\n{\"context\":\"eyJhd3M6czM6YXJuIjogImFybjphd3M6czM6OjpiL28ifQ==\",\"bits\":512}",
    );
    write(
        "vault",
        "create",
        "PUT /v1/transit/keys/orders\n{\"type\":\"aes256-gcm96\",\"exportable\":\"false\",\"deletion_allowed\":true}",
    );
    write("vault", "list", "LIST /v1/transit/keys\n");
    write(
        "vault",
        "sign",
        "POST /v1/transit/sign/release/sha2-384\n{\"input\":\"aGVsbG8=\",\"signature_algorithm\":\"pkcs1v15\",\"prehashed\":false}",
    );
    write(
        "vault",
        "verify",
        "POST /v1/transit/verify/release\n{\"input\":\"aGVsbG8=\",\"signature\":\"vault:v2:c2lnbmF0dXJl\"}",
    );
    write(
        "vault",
        "kv-write",
        "POST /v1/secret/data/ceph-csi/vol%201\n{\"data\":{\"key\":\"c2VjcmV0\"},\"options\":{\"cas\":0}}",
    );
    write(
        "vault",
        "kv-metadata",
        "POST /v1/secret/metadata/ceph-csi/vol\n{\"max_versions\":5,\"cas_required\":\"true\",\"delete_version_after\":\"1h30m\",\"custom_metadata\":{\"owner\":\"csi\"}}",
    );
    write(
        "vault",
        "kv-destroy",
        "POST /v1/secret/destroy/ceph-csi/vol\n{\"versions\":[1,\"2\"]}",
    );
    write(
        "vault",
        "kv-read",
        "GET /v1/secret/data/ceph-csi/vol?version=2\n",
    );
    write(
        "vault",
        "kubernetes-login",
        "POST /v1/auth/kubernetes/login\n{\"role\":\"ceph-csi\",\"jwt\":\"eyJhbGciOi.eyJpc3Mi.c2ln\"}",
    );
    write(
        "vault",
        "token-review",
        "POST /v1/auth/kubernetes/login\n{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,\"user\":{\"username\":\"system:serviceaccount:ceph-csi:rbd\",\"uid\":\"u\"}}}",
    );
}

fn main() {
    vault_seeds();
    kmip_seeds();
    xks_seeds();
    sigv4_seeds();
    aws_json_seeds();
    ciphertext_seeds();
    aead_stream_seeds();
    backup_seeds();
    envelope_seeds();
    audit_seeds();
    policy_seeds();
    byok_seeds();
    barbican_seeds();
    k8s_seeds();
    println!("seeds written under fuzz/corpus/");
}
