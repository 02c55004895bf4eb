//! What each operation's request may hold, as AWS's API reference (the KMS service
//! model) states it: which members are required, and each member's type, lengths,
//! range, pattern or enumeration. A request is checked against its operation's shape
//! before the operation reads it ([`Request::check`]); what breaks the shape is
//! answered as AWS answers it (`check.rs`).
//!
//! The tables follow the model member for member and in its order (which is the
//! order violations are listed in), for the operations kcm serves. One rule is
//! AWS's beyond its published model: a key identifier must be ASCII
//! (`^\p{ASCII}+$`), which AWS enforces and names in its messages.
//! `tests/python/test_aws_validation.py` holds every table to the model botocore
//! ships.

mod check;
mod request;

use std::sync::LazyLock;

use kcm_core::authz::Op;
use regex::Regex;

pub use request::Request;

/// A member of a request.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    /// Its name on the wire (`KeyId`).
    pub name: &'static str,
    /// What it may hold.
    pub ty: Type,
    /// Whether a request must have it.
    pub required: bool,
    /// Whether AWS marks it sensitive: its value is never shown, not even as null.
    pub sensitive: bool,
}

/// What a member may hold.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    /// A string of `min..=max` characters, matching `pattern` when there is one.
    Str {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
        /// The pattern it must match (anywhere in it, as Smithy patterns do).
        pattern: Option<Pattern>,
    },
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// Base64 of `min..=max` bytes.
    Blob {
        /// Fewest bytes.
        min: usize,
        /// Most bytes.
        max: usize,
    },
    /// An integer in `min..=max`.
    Int {
        /// Least value.
        min: i64,
        /// Greatest value.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// Seconds since 1970.
    Timestamp,
    /// An object of strings (an encryption context).
    Map,
    /// A structure of these members.
    Struct(&'static [Member]),
    /// A list of `min..=max` elements of `item`.
    List {
        /// Fewest elements.
        min: usize,
        /// Most elements.
        max: usize,
        /// What each element may be.
        item: &'static Type,
    },
}

/// The patterns of AWS's API reference that kcm's operations use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Key identifiers: ASCII only.
    Ascii,
    /// Alias and grant names.
    AliasName,
    /// Principals (ARNs and account ids).
    PrincipalId,
    /// Service principals (`service.amazonaws.com`).
    ServicePrincipal,
    /// A grant constraint's source ARN.
    SourceArn,
    /// Key policies: tab, LF, CR and U+0020 to U+00FF.
    Policy,
    /// Policy names.
    PolicyName,
    /// Paging markers.
    Marker,
    /// External key ids of external key stores.
    XksKeyId,
    /// Key material ids: 64 hex digits.
    KeyMaterialId,
    /// Key material descriptions.
    KeyMaterialDescription,
}

impl Pattern {
    /// Every pattern.
    pub const ALL: [Pattern; 11] = [
        Pattern::Ascii,
        Pattern::AliasName,
        Pattern::PrincipalId,
        Pattern::ServicePrincipal,
        Pattern::SourceArn,
        Pattern::Policy,
        Pattern::PolicyName,
        Pattern::Marker,
        Pattern::XksKeyId,
        Pattern::KeyMaterialId,
        Pattern::KeyMaterialDescription,
    ];

    /// The pattern as AWS writes it (in its messages too).
    pub fn text(self) -> &'static str {
        self.forms().0
    }

    /// `(AWS's text, the same pattern in the regex crate's syntax)`. They differ
    /// where Java's classes are ASCII (`\w`, `\d`, `\s`) and Rust's are Unicode, and
    /// in how a code point is escaped.
    fn forms(self) -> (&'static str, &'static str) {
        match self {
            Pattern::Ascii => (r"^\p{ASCII}+$", r"^[\x00-\x7F]+$"),
            Pattern::AliasName => ("^[a-zA-Z0-9:/_-]+$", "^[a-zA-Z0-9:/_-]+$"),
            Pattern::PrincipalId => (r"^[\w+=,.@:/-]+$", r"^[[:word:]+=,.@:/-]+$"),
            Pattern::ServicePrincipal => (
                r"^([A-Za-z0-9\-]+)\.([A-Za-z0-9\-]+)(\.[A-Za-z0-9\-]+)+$",
                r"^([A-Za-z0-9\-]+)\.([A-Za-z0-9\-]+)(\.[A-Za-z0-9\-]+)+$",
            ),
            Pattern::SourceArn => (
                "^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$",
                "^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$",
            ),
            Pattern::Policy => (
                r"[\u0009\u000A\u000D\u0020-\u00FF]+",
                r"[\x09\x0A\x0D\x20-\xFF]+",
            ),
            Pattern::PolicyName => (r"[\w]+", r"[[:word:]]+"),
            Pattern::Marker => (r"[\u0020-\u00FF]*", r"[\x20-\xFF]*"),
            Pattern::XksKeyId => ("^[a-zA-Z0-9-_.]+$", r"^[a-zA-Z0-9\-_.]+$"),
            Pattern::KeyMaterialId => ("^[a-f0-9]+$", "^[a-f0-9]+$"),
            Pattern::KeyMaterialDescription => {
                (r"^[a-zA-Z0-9:/_\s.-]+$", r"^[a-zA-Z0-9:/_[:space:].-]+$")
            }
        }
    }

    /// Whether `text` matches (anywhere, unless the pattern is anchored).
    pub fn matches(self, text: &str) -> bool {
        static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
            Pattern::ALL
                .iter()
                .map(|p| Regex::new(p.forms().1).expect("the patterns are fixed and tested"))
                .collect()
        });
        COMPILED[self as usize].is_match(text)
    }
}

const fn required(name: &'static str, ty: Type) -> Member {
    Member {
        name,
        ty,
        required: true,
        sensitive: false,
    }
}

const fn optional(name: &'static str, ty: Type) -> Member {
    Member {
        name,
        ty,
        required: false,
        sensitive: false,
    }
}

const fn sensitive(member: Member) -> Member {
    Member {
        sensitive: true,
        ..member
    }
}

const fn string(min: usize, max: usize) -> Type {
    Type::Str {
        min,
        max,
        pattern: None,
    }
}

const fn matching(min: usize, max: usize, pattern: Pattern) -> Type {
    Type::Str {
        min,
        max,
        pattern: Some(pattern),
    }
}

// The model's shared types.
const KEY_ID: Type = matching(1, 2048, Pattern::Ascii);
const CIPHERTEXT: Type = Type::Blob { min: 1, max: 6144 };
const PLAINTEXT: Type = Type::Blob { min: 1, max: 4096 };
const GRANT_TOKENS: Type = Type::List {
    min: 0,
    max: 10,
    item: &string(1, 8192),
};
const LIMIT: Type = Type::Int { min: 1, max: 1000 };
const MARKER: Type = matching(1, 1024, Pattern::Marker);
const ALIAS_NAME: Type = matching(1, 256, Pattern::AliasName);
const PRINCIPAL: Type = matching(1, 256, Pattern::PrincipalId);
const SERVICE_PRINCIPAL: Type = matching(1, 128, Pattern::ServicePrincipal);
const GRANT_ID: Type = string(1, 128);
const POLICY: Type = matching(1, 131072, Pattern::Policy);
const POLICY_NAME: Type = matching(1, 128, Pattern::PolicyName);
const DESCRIPTION: Type = string(0, 8192);
const KEY_MATERIAL_ID: Type = matching(64, 64, Pattern::KeyMaterialId);
const NUMBER_OF_BYTES: Type = Type::Int { min: 1, max: 1024 };
const ENCRYPTION_ALGORITHM: Type = Type::Enum(&[
    "SYMMETRIC_DEFAULT",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "SM2PKE",
]);
const SIGNING_ALGORITHM: Type = Type::Enum(&[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "SM2DSA",
    "ML_DSA_SHAKE_256",
    "ED25519_SHA_512",
    "ED25519_PH_SHA_512",
]);
const MESSAGE_TYPE: Type = Type::Enum(&["RAW", "DIGEST", "EXTERNAL_MU"]);
const MAC_ALGORITHM: Type = Type::Enum(&[
    "HMAC_SHA_224",
    "HMAC_SHA_256",
    "HMAC_SHA_384",
    "HMAC_SHA_512",
]);
const DATA_KEY_SPEC: Type = Type::Enum(&["AES_256", "AES_128"]);
const DATA_KEY_PAIR_SPEC: Type = Type::Enum(&[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SM2",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
]);
const RECIPIENT: Type = Type::Struct(&[
    optional(
        "KeyEncryptionAlgorithm",
        Type::Enum(&["RSAES_OAEP_SHA_256"]),
    ),
    optional(
        "AttestationDocument",
        Type::Blob {
            min: 1,
            max: 262144,
        },
    ),
]);
const DRY_RUN_MODIFIERS: Type = Type::List {
    min: 0,
    max: usize::MAX,
    item: &Type::Enum(&["IGNORE_CIPHERTEXT"]),
};
const TAGS: Type = Type::List {
    min: 0,
    max: usize::MAX,
    item: &Type::Struct(&[
        required("TagKey", string(1, 128)),
        required("TagValue", string(0, 256)),
    ]),
};
const GRANT_OPERATIONS: Type = Type::List {
    min: 0,
    max: usize::MAX,
    item: &Type::Enum(&[
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "Sign",
        "Verify",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    ]),
};

/// A request that names only a key (`{"KeyId": …}`).
const KEY_ONLY: &[Member] = &[required("KeyId", KEY_ID)];
/// A key and a page of something of it.
const KEY_PAGE: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("Limit", LIMIT),
    optional("Marker", MARKER),
];
const ALIAS_TARGET: &[Member] = &[
    required("AliasName", ALIAS_NAME),
    required("TargetKeyId", KEY_ID),
];
const GENERATE_DATA_KEY: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("EncryptionContext", Type::Map),
    optional("NumberOfBytes", NUMBER_OF_BYTES),
    optional("KeySpec", DATA_KEY_SPEC),
    optional("GrantTokens", GRANT_TOKENS),
    optional("Recipient", RECIPIENT),
    optional("DryRun", Type::Bool),
];
const GENERATE_DATA_KEY_PAIR: &[Member] = &[
    optional("EncryptionContext", Type::Map),
    required("KeyId", KEY_ID),
    required("KeyPairSpec", DATA_KEY_PAIR_SPEC),
    optional("GrantTokens", GRANT_TOKENS),
    optional("Recipient", RECIPIENT),
    optional("DryRun", Type::Bool),
];

/// The shape of `op`'s request. Operations of other doors have none (every member
/// is then ignored, but `dispatch` never serves them).
pub fn of(op: Op) -> &'static [Member] {
    match op {
        Op::CreateKey => CREATE_KEY,
        Op::DescribeKey | Op::GetPublicKey => DESCRIBE_KEY,
        Op::ListKeys => LIST_KEYS,
        Op::UpdateKeyDescription => UPDATE_KEY_DESCRIPTION,
        Op::EnableKey
        | Op::DisableKey
        | Op::CancelKeyDeletion
        | Op::DisableKeyRotation
        | Op::GetKeyRotationStatus
        | Op::RotateKeyOnDemand => KEY_ONLY,
        Op::ScheduleKeyDeletion => SCHEDULE_KEY_DELETION,
        Op::CreateAlias | Op::UpdateAlias => ALIAS_TARGET,
        Op::DeleteAlias => DELETE_ALIAS,
        Op::ListAliases => LIST_ALIASES,
        Op::TagResource => TAG_RESOURCE,
        Op::UntagResource => UNTAG_RESOURCE,
        Op::ListResourceTags | Op::ListKeyPolicies => KEY_PAGE,
        Op::Encrypt => ENCRYPT,
        Op::Decrypt => DECRYPT,
        Op::ReEncrypt => RE_ENCRYPT,
        Op::GenerateDataKey => GENERATE_DATA_KEY,
        // The same members without Recipient.
        Op::GenerateDataKeyWithoutPlaintext => GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
        Op::GenerateRandom => GENERATE_RANDOM,
        Op::GenerateDataKeyPair => GENERATE_DATA_KEY_PAIR,
        // The same members without Recipient.
        Op::GenerateDataKeyPairWithoutPlaintext => GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT,
        Op::Sign => SIGN,
        Op::Verify => VERIFY,
        Op::GenerateMac => GENERATE_MAC,
        Op::VerifyMac => VERIFY_MAC,
        Op::DeriveSharedSecret => DERIVE_SHARED_SECRET,
        Op::EnableKeyRotation => ENABLE_KEY_ROTATION,
        Op::ListKeyRotations => LIST_KEY_ROTATIONS,
        Op::GetKeyPolicy => GET_KEY_POLICY,
        Op::PutKeyPolicy => PUT_KEY_POLICY,
        Op::CreateGrant => CREATE_GRANT,
        Op::ListGrants => LIST_GRANTS,
        Op::ListRetirableGrants => LIST_RETIRABLE_GRANTS,
        Op::RetireGrant => RETIRE_GRANT,
        Op::RevokeGrant => REVOKE_GRANT,
        Op::GetParametersForImport => GET_PARAMETERS_FOR_IMPORT,
        Op::ImportKeyMaterial => IMPORT_KEY_MATERIAL,
        Op::DeleteImportedKeyMaterial => DELETE_IMPORTED_KEY_MATERIAL,
        _ => &[],
    }
}

/// CreateKey.
const CREATE_KEY: &[Member] = &[
    optional("Policy", POLICY),
    optional("Description", DESCRIPTION),
    optional(
        "KeyUsage",
        Type::Enum(&[
            "SIGN_VERIFY",
            "ENCRYPT_DECRYPT",
            "GENERATE_VERIFY_MAC",
            "KEY_AGREEMENT",
            "ENCAPSULATE_DECAPSULATE",
        ]),
    ),
    optional(
        "CustomerMasterKeySpec",
        Type::Enum(&[
            "RSA_2048",
            "RSA_3072",
            "RSA_4096",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
            "SYMMETRIC_DEFAULT",
            "HMAC_224",
            "HMAC_256",
            "HMAC_384",
            "HMAC_512",
            "SM2",
        ]),
    ),
    optional(
        "KeySpec",
        Type::Enum(&[
            "RSA_2048",
            "RSA_3072",
            "RSA_4096",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
            "SYMMETRIC_DEFAULT",
            "HMAC_224",
            "HMAC_256",
            "HMAC_384",
            "HMAC_512",
            "SM2",
            "ML_DSA_44",
            "ML_DSA_65",
            "ML_DSA_87",
            "ECC_NIST_EDWARDS25519",
            "ML_KEM_512",
            "ML_KEM_768",
            "ML_KEM_1024",
        ]),
    ),
    optional(
        "Origin",
        Type::Enum(&["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"]),
    ),
    optional("CustomKeyStoreId", string(1, 64)),
    optional("BypassPolicyLockoutSafetyCheck", Type::Bool),
    optional("Tags", TAGS),
    optional("MultiRegion", Type::Bool),
    optional("XksKeyId", matching(1, 128, Pattern::XksKeyId)),
];

/// DescribeKey.
const DESCRIBE_KEY: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("GrantTokens", GRANT_TOKENS),
];

/// UpdateKeyDescription.
const UPDATE_KEY_DESCRIPTION: &[Member] = &[
    required("KeyId", KEY_ID),
    required("Description", DESCRIPTION),
];

/// ScheduleKeyDeletion.
const SCHEDULE_KEY_DELETION: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("PendingWindowInDays", Type::Int { min: 1, max: 365 }),
];

/// ListAliases.
const LIST_ALIASES: &[Member] = &[
    optional("KeyId", KEY_ID),
    optional("Limit", LIMIT),
    optional("Marker", MARKER),
];

/// UntagResource.
const UNTAG_RESOURCE: &[Member] = &[
    required("KeyId", KEY_ID),
    required(
        "TagKeys",
        Type::List {
            min: 0,
            max: usize::MAX,
            item: &string(1, 128),
        },
    ),
];

/// Encrypt.
const ENCRYPT: &[Member] = &[
    required("KeyId", KEY_ID),
    sensitive(required("Plaintext", PLAINTEXT)),
    optional("EncryptionContext", Type::Map),
    optional("GrantTokens", GRANT_TOKENS),
    optional("EncryptionAlgorithm", ENCRYPTION_ALGORITHM),
    optional("DryRun", Type::Bool),
];

/// Decrypt.
const DECRYPT: &[Member] = &[
    // Optional in the published model, required by AWS (which answers "Value
    // null at 'ciphertextBlob' … must not be null"), as by kcm.
    required("CiphertextBlob", CIPHERTEXT),
    optional("EncryptionContext", Type::Map),
    optional("GrantTokens", GRANT_TOKENS),
    optional("KeyId", KEY_ID),
    optional("EncryptionAlgorithm", ENCRYPTION_ALGORITHM),
    optional("Recipient", RECIPIENT),
    optional("DryRun", Type::Bool),
    optional("DryRunModifiers", DRY_RUN_MODIFIERS),
];

/// ReEncrypt.
const RE_ENCRYPT: &[Member] = &[
    // Required by AWS, as Decrypt's.
    required("CiphertextBlob", CIPHERTEXT),
    optional("SourceEncryptionContext", Type::Map),
    optional("SourceKeyId", KEY_ID),
    required("DestinationKeyId", KEY_ID),
    optional("DestinationEncryptionContext", Type::Map),
    optional("SourceEncryptionAlgorithm", ENCRYPTION_ALGORITHM),
    optional("DestinationEncryptionAlgorithm", ENCRYPTION_ALGORITHM),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
    optional("DryRunModifiers", DRY_RUN_MODIFIERS),
];

/// GenerateDataKeyWithoutPlaintext.
const GENERATE_DATA_KEY_WITHOUT_PLAINTEXT: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("EncryptionContext", Type::Map),
    optional("KeySpec", DATA_KEY_SPEC),
    optional("NumberOfBytes", NUMBER_OF_BYTES),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
];

/// GenerateRandom.
const GENERATE_RANDOM: &[Member] = &[
    optional("NumberOfBytes", NUMBER_OF_BYTES),
    optional("CustomKeyStoreId", string(1, 64)),
    optional("Recipient", RECIPIENT),
];

/// GenerateDataKeyPairWithoutPlaintext.
const GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT: &[Member] = &[
    optional("EncryptionContext", Type::Map),
    required("KeyId", KEY_ID),
    required("KeyPairSpec", DATA_KEY_PAIR_SPEC),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
];

/// Sign.
const SIGN: &[Member] = &[
    required("KeyId", KEY_ID),
    sensitive(required("Message", PLAINTEXT)),
    optional("MessageType", MESSAGE_TYPE),
    optional("GrantTokens", GRANT_TOKENS),
    required("SigningAlgorithm", SIGNING_ALGORITHM),
    optional("DryRun", Type::Bool),
];

/// Verify.
const VERIFY: &[Member] = &[
    required("KeyId", KEY_ID),
    sensitive(required("Message", PLAINTEXT)),
    optional("MessageType", MESSAGE_TYPE),
    required("Signature", CIPHERTEXT),
    required("SigningAlgorithm", SIGNING_ALGORITHM),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
];

/// GenerateMac.
const GENERATE_MAC: &[Member] = &[
    sensitive(required("Message", PLAINTEXT)),
    required("KeyId", KEY_ID),
    required("MacAlgorithm", MAC_ALGORITHM),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
];

/// VerifyMac.
const VERIFY_MAC: &[Member] = &[
    sensitive(required("Message", PLAINTEXT)),
    required("KeyId", KEY_ID),
    required("MacAlgorithm", MAC_ALGORITHM),
    required("Mac", CIPHERTEXT),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
];

/// DeriveSharedSecret.
const DERIVE_SHARED_SECRET: &[Member] = &[
    required("KeyId", KEY_ID),
    required("KeyAgreementAlgorithm", Type::Enum(&["ECDH"])),
    required("PublicKey", Type::Blob { min: 1, max: 8192 }),
    optional("GrantTokens", GRANT_TOKENS),
    optional("DryRun", Type::Bool),
    optional("Recipient", RECIPIENT),
];

/// EnableKeyRotation.
const ENABLE_KEY_ROTATION: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("RotationPeriodInDays", Type::Int { min: 90, max: 2560 }),
];

/// ListKeyRotations.
const LIST_KEY_ROTATIONS: &[Member] = &[
    required("KeyId", KEY_ID),
    optional(
        "IncludeKeyMaterial",
        Type::Enum(&["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"]),
    ),
    optional("Limit", LIMIT),
    optional("Marker", MARKER),
];

/// GetKeyPolicy.
const GET_KEY_POLICY: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("PolicyName", POLICY_NAME),
];

/// PutKeyPolicy.
const PUT_KEY_POLICY: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("PolicyName", POLICY_NAME),
    required("Policy", POLICY),
    optional("BypassPolicyLockoutSafetyCheck", Type::Bool),
];

/// CreateGrant.
const CREATE_GRANT: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("GranteePrincipal", PRINCIPAL),
    optional("RetiringPrincipal", PRINCIPAL),
    required("Operations", GRANT_OPERATIONS),
    optional(
        "Constraints",
        Type::Struct(&[
            optional("EncryptionContextSubset", Type::Map),
            optional("EncryptionContextEquals", Type::Map),
            optional("SourceArn", matching(20, 512, Pattern::SourceArn)),
        ]),
    ),
    optional("GrantTokens", GRANT_TOKENS),
    optional("Name", matching(1, 256, Pattern::AliasName)),
    optional("DryRun", Type::Bool),
    optional("GranteeServicePrincipal", SERVICE_PRINCIPAL),
    optional("RetiringServicePrincipal", SERVICE_PRINCIPAL),
];

/// ListGrants.
const LIST_GRANTS: &[Member] = &[
    optional("Limit", LIMIT),
    optional("Marker", MARKER),
    required("KeyId", KEY_ID),
    optional("GrantId", GRANT_ID),
    optional("GranteePrincipal", PRINCIPAL),
    optional("GranteeServicePrincipal", SERVICE_PRINCIPAL),
];

/// ListRetirableGrants.
const LIST_RETIRABLE_GRANTS: &[Member] = &[
    optional("Limit", LIMIT),
    optional("Marker", MARKER),
    optional("RetiringPrincipal", PRINCIPAL),
    optional("RetiringServicePrincipal", SERVICE_PRINCIPAL),
];

/// RetireGrant.
const RETIRE_GRANT: &[Member] = &[
    optional("GrantToken", string(1, 8192)),
    optional("KeyId", KEY_ID),
    optional("GrantId", GRANT_ID),
    optional("DryRun", Type::Bool),
];

/// RevokeGrant.
const REVOKE_GRANT: &[Member] = &[
    required("KeyId", KEY_ID),
    required("GrantId", GRANT_ID),
    optional("DryRun", Type::Bool),
];

/// GetParametersForImport.
const GET_PARAMETERS_FOR_IMPORT: &[Member] = &[
    required("KeyId", KEY_ID),
    required(
        "WrappingAlgorithm",
        Type::Enum(&[
            "RSAES_PKCS1_V1_5",
            "RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_256",
            "RSA_AES_KEY_WRAP_SHA_1",
            "RSA_AES_KEY_WRAP_SHA_256",
            "SM2PKE",
        ]),
    ),
    required(
        "WrappingKeySpec",
        Type::Enum(&["RSA_2048", "RSA_3072", "RSA_4096", "SM2"]),
    ),
];

/// ImportKeyMaterial.
const IMPORT_KEY_MATERIAL: &[Member] = &[
    required("KeyId", KEY_ID),
    required("ImportToken", CIPHERTEXT),
    required("EncryptedKeyMaterial", CIPHERTEXT),
    optional("ValidTo", Type::Timestamp),
    optional(
        "ExpirationModel",
        Type::Enum(&["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"]),
    ),
    optional(
        "ImportType",
        Type::Enum(&["NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"]),
    ),
    optional(
        "KeyMaterialDescription",
        matching(0, 256, Pattern::KeyMaterialDescription),
    ),
    optional("KeyMaterialId", KEY_MATERIAL_ID),
];

/// DeleteImportedKeyMaterial.
const DELETE_IMPORTED_KEY_MATERIAL: &[Member] = &[
    required("KeyId", KEY_ID),
    optional("KeyMaterialId", KEY_MATERIAL_ID),
];

/// DeleteAlias.
const DELETE_ALIAS: &[Member] = &[required("AliasName", ALIAS_NAME)];

/// TagResource.
const TAG_RESOURCE: &[Member] = &[required("KeyId", KEY_ID), required("Tags", TAGS)];

/// ListKeys.
const LIST_KEYS: &[Member] = &[
    optional("Limit", LIMIT),
    optional("Marker", MARKER),
    optional(
        "ResourceOwners",
        Type::List {
            min: 1,
            max: 2,
            item: &Type::Enum(&["SELF", "OTHER_ACCOUNTS_VIA_RAM"]),
        },
    ),
];
