//! Management commands: keys and aliases (through the AWS KMS API), tenants, access
//! keys, systems and the keychain (through `/v1`).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kcm_api_types::{
    AccessKey, CreateAccessKeyRequest, CreateRootKeyRequest, CreateSystemRequest,
    CreateTenantRequest, ImportRootKeyRequest, Keychain, KeychainSystemNode, LinkSystemRequest,
    ReferenceRootKeyRequest, RewrapParams, RootKey, RootKeyImpactBody,
    RootKeyImportParametersRequest, StateChangeParams, SwitchRootKeyRequest, System,
    SystemKeyRotationBody, Tenant,
};
use kcm_client::RootKeyChange;
use serde_json::{json, Value};

use super::client::Clients;
use super::output::{self, columns, Format};

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// `kcm key …`
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Create a key in your system: symmetric (AES-256, the default), RSA, ECC,
    /// Ed25519, HMAC or ML-DSA.
    Create {
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// SYMMETRIC_DEFAULT, RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256,
        /// ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519,
        /// HMAC_224, HMAC_256, HMAC_384, HMAC_512, ML_DSA_44, ML_DSA_65 or ML_DSA_87.
        #[arg(long, default_value = "SYMMETRIC_DEFAULT")]
        key_spec: String,
        /// ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC or KEY_AGREEMENT; by
        /// default ENCRYPT_DECRYPT where the spec allows it, else the spec's only
        /// usage (ECC NIST keys must choose SIGN_VERIFY or KEY_AGREEMENT).
        #[arg(long)]
        key_usage: Option<String>,
        /// Tag as KEY=VALUE (repeatable).
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
    },
    /// List your keys.
    List,
    /// Show a key (id, ARN, alias or alias ARN).
    Describe {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Enable a disabled key.
    Enable {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Disable a key: every operation with it is refused until it is enabled.
    Disable {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Schedule deletion after a waiting period (7–30 days).
    ScheduleDeletion {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
        /// Waiting period in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Cancel a scheduled deletion (the key becomes disabled).
    CancelDeletion {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Mark a key compromised (NIST SP 800-57): from now on it only decrypts and
    /// verifies, so data can be recovered and re-protected under another key; every
    /// audit record naming it says so. Irreversible: it never encrypts or signs again.
    Compromise {
        /// The key (id or alias).
        key: String,
    },
    /// Destroy a compromised key now: its material, aliases and grants are erased
    /// (metadata stays for audit). Irreversible; only a compromised key can be
    /// destroyed this way — others are scheduled for deletion.
    Destroy {
        /// The key (id or alias).
        key: String,
        /// Confirm that the key's material is to be erased now, for good.
        #[arg(long)]
        yes: bool,
    },
    /// Rotate now: a new key version encrypts from now on; old ciphertexts still decrypt.
    Rotate {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Turn on automatic rotation.
    EnableRotation {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
        /// Rotation period in days (90–2560).
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Turn off automatic rotation.
    DisableRotation {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Show automatic rotation settings and past rotations.
    Rotations {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
    },
    /// Print an asymmetric key's public key as PEM (text output) or its details
    /// (JSON output). Every version's public key stays available after rotation.
    PublicKey {
        /// The key (id, ARN, alias or alias ARN).
        key: String,
        /// The key version (`kcm key rotations` lists them as KcmKeyVersion); the
        /// current one by default.
        #[arg(long)]
        key_version: Option<u32>,
    },
}

/// PEM text of a DER SubjectPublicKeyInfo given in base64.
fn public_key_pem(der_base64: &str) -> Result<String> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let der = engine
        .decode(der_base64)
        .context("the server returned a public key that is not base64")?;
    let body = engine.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----");
    Ok(pem)
}

impl KeyArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        match self.command {
            KeyCommand::Create {
                description,
                tags,
                key_spec,
                key_usage,
            } => {
                let tags: Vec<Value> = tags
                    .into_iter()
                    .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
                    .collect();
                let mut request =
                    json!({"Description": description, "Tags": tags, "KeySpec": key_spec});
                if let Some(usage) = key_usage {
                    request["KeyUsage"] = json!(usage);
                }
                let out = c.kms("CreateKey", request).await?;
                output::object(f, &out["KeyMetadata"]);
            }
            KeyCommand::List => {
                let mut keys = Vec::new();
                let mut marker: Option<String> = None;
                loop {
                    let mut req = json!({"Limit": 1000});
                    if let Some(m) = &marker {
                        req["Marker"] = json!(m);
                    }
                    let page = c.kms("ListKeys", req).await?;
                    keys.extend(page["Keys"].as_array().cloned().unwrap_or_default());
                    match page["NextMarker"].as_str() {
                        Some(m) if page["Truncated"] == json!(true) => marker = Some(m.to_string()),
                        _ => break,
                    }
                }
                let mut rows = Vec::new();
                for k in &keys {
                    let meta = c.kms("DescribeKey", json!({"KeyId": k["KeyId"]})).await?;
                    rows.push(meta["KeyMetadata"].clone());
                }
                output::table(
                    f,
                    &json!({"Keys": rows}),
                    &rows,
                    &output::json_columns(&["KeyId", "KeyState", "Description"]),
                );
            }
            KeyCommand::Describe { key } => {
                let out = c.kms("DescribeKey", json!({"KeyId": key})).await?;
                output::object(f, &out["KeyMetadata"]);
            }
            KeyCommand::Enable { key } => done(c, f, "EnableKey", &key, "enabled").await?,
            KeyCommand::Disable { key } => done(c, f, "DisableKey", &key, "disabled").await?,
            KeyCommand::ScheduleDeletion { key, days } => {
                let key = c.key_arn(&key).await?;
                let out = c
                    .kms(
                        "ScheduleKeyDeletion",
                        json!({"KeyId": key, "PendingWindowInDays": days}),
                    )
                    .await?;
                output::object(f, &out);
            }
            KeyCommand::CancelDeletion { key } => {
                let key = c.key_arn(&key).await?;
                let out = c.kms("CancelKeyDeletion", json!({"KeyId": key})).await?;
                output::object(f, &out);
            }
            KeyCommand::Compromise { key } => {
                let out = c.rest().mark_key_compromised(&key).await?;
                output::object_or_text(f, &out, |out| {
                    format!(
                        "key {} is now compromised: it only decrypts and verifies\n",
                        out.id
                    )
                });
            }
            KeyCommand::Destroy { key, yes } => {
                if !yes {
                    anyhow::bail!(
                        "destroying key {key} erases its material for good: repeat with --yes"
                    );
                }
                let out = c.rest().destroy_compromised_key(&key).await?;
                output::object_or_text(f, &out, |out| {
                    format!("key {} is destroyed ({})\n", out.id, out.state)
                });
            }
            KeyCommand::Rotate { key } => {
                let key = c.key_arn(&key).await?;
                let out = c.kms("RotateKeyOnDemand", json!({"KeyId": key})).await?;
                output::object(f, &out);
            }
            KeyCommand::EnableRotation { key, days } => {
                let key = c.key_arn(&key).await?;
                c.kms(
                    "EnableKeyRotation",
                    json!({"KeyId": key, "RotationPeriodInDays": days}),
                )
                .await?;
                let out = c.kms("GetKeyRotationStatus", json!({"KeyId": key})).await?;
                output::object(f, &out);
            }
            KeyCommand::DisableRotation { key } => {
                done(
                    c,
                    f,
                    "DisableKeyRotation",
                    &key,
                    "automatic rotation disabled",
                )
                .await?
            }
            KeyCommand::Rotations { key } => {
                let key = c.key_arn(&key).await?;
                let status = c.kms("GetKeyRotationStatus", json!({"KeyId": key})).await?;
                let list = c.kms("ListKeyRotations", json!({"KeyId": key})).await?;
                output::object(
                    f,
                    &json!({"Status": status, "Rotations": list["Rotations"]}),
                );
            }
            KeyCommand::PublicKey { key, key_version } => {
                let mut request = json!({"KeyId": key});
                if let Some(v) = key_version {
                    request["KcmKeyVersion"] = json!(v);
                }
                let out = c.kms("GetPublicKey", request).await?;
                match f {
                    Format::Json => output::object(f, &out),
                    Format::Text => println!(
                        "{}",
                        public_key_pem(out["PublicKey"].as_str().unwrap_or_default())?
                    ),
                }
            }
        }
        Ok(())
    }
}

async fn done(c: &Clients, f: Format, op: &str, key: &str, what: &str) -> Result<()> {
    c.kms(op, json!({"KeyId": c.key_arn(key).await?})).await?;
    output::object(f, &json!({"KeyId": key, "result": what}));
    Ok(())
}

/// `kcm alias …`
#[derive(Args, Debug)]
pub struct AliasArgs {
    #[command(subcommand)]
    command: AliasCommand,
}

#[derive(Subcommand, Debug)]
enum AliasCommand {
    /// Create alias NAME (alias/…) for KEY.
    Create {
        /// Alias name, starting with alias/.
        name: String,
        /// Key id or ARN.
        key: String,
    },
    /// Point alias NAME at another KEY.
    Update {
        /// Alias name.
        name: String,
        /// Key id or ARN.
        key: String,
    },
    /// Delete alias NAME.
    Delete {
        /// Alias name.
        name: String,
    },
    /// List aliases.
    List,
}

impl AliasArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        match self.command {
            AliasCommand::Create { name, key } => {
                c.kms(
                    "CreateAlias",
                    json!({"AliasName": name, "TargetKeyId": key}),
                )
                .await?;
                output::object(f, &json!({"AliasName": name, "TargetKeyId": key}));
            }
            AliasCommand::Update { name, key } => {
                c.kms(
                    "UpdateAlias",
                    json!({"AliasName": name, "TargetKeyId": key}),
                )
                .await?;
                output::object(f, &json!({"AliasName": name, "TargetKeyId": key}));
            }
            AliasCommand::Delete { name } => {
                c.kms("DeleteAlias", json!({"AliasName": name})).await?;
                output::object(f, &json!({"AliasName": name, "result": "deleted"}));
            }
            AliasCommand::List => {
                let out = c.kms("ListAliases", json!({"Limit": 100})).await?;
                let rows = out["Aliases"].as_array().cloned().unwrap_or_default();
                let columns = output::json_columns(&["AliasName", "TargetKeyId"]);
                output::table(f, &out, &rows, &columns);
            }
        }
        Ok(())
    }
}

/// `kcm tenant …`
#[derive(Args, Debug)]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant with its root key, default system and first tenant-admin key.
    Create {
        /// Tenant name.
        name: String,
    },
    /// List tenants.
    List,
    /// Show a tenant.
    Show {
        /// Tenant id or name.
        tenant: String,
    },
}

impl TenantArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        match self.command {
            TenantCommand::Create { name } => {
                let out = c
                    .rest()
                    .create_tenant(&CreateTenantRequest { name })
                    .await?;
                output::object(f, &out);
                if f == Format::Text {
                    eprintln!("note: the secret access key is shown only once; store it now.");
                }
            }
            TenantCommand::List => {
                let out = c.rest().list_tenants().await?;
                let columns = columns!(Tenant: id, name, account_id);
                output::table(f, &out, &out.tenants, &columns);
            }
            TenantCommand::Show { tenant } => {
                output::object(f, &c.rest().get_tenant(&tenant).await?);
            }
        }
        Ok(())
    }
}

/// `kcm access-key …`
#[derive(Args, Debug)]
pub struct AccessKeyArgs {
    #[command(subcommand)]
    command: AccessKeyCommand,
}

#[derive(Subcommand, Debug)]
enum AccessKeyCommand {
    /// Create an access key (its secret is shown once).
    ///
    /// With --kind xks, the key AWS KMS signs its calls to kcm's XKS proxy API with
    /// (give it to CreateCustomKeyStore or UpdateCustomKeyStore): role key-user,
    /// scoped to --system (one external key store is one system), limited to the
    /// XKS operations. Rotate it by creating a second one for the same system,
    /// updating the key store in AWS KMS, then deleting the first.
    ///
    /// With --kind vault, a token for kcm's Vault-compatible API (`vault_token` in
    /// the output, for `X-Vault-Token` or `VAULT_TOKEN`): a key-user (the default:
    /// Transit encrypt, decrypt, rewrap, data keys, sign, verify, hmac; KV secrets
    /// read and written), a key-admin (Transit keys' creation, configuration,
    /// rotation and deletion — as kcm's roles have it, not their use) or an auditor
    /// (Transit keys and KV metadata, never a value) of --system.
    Create {
        /// tenant-admin, key-admin, key-user or auditor (with --kind xks: key-user,
        /// the default; with --kind vault: key-user, the default, key-admin or
        /// auditor).
        #[arg(
            long,
            required_unless_present = "kind",
            required_if_eq("kind", "sigv4")
        )]
        role: Option<String>,
        /// sigv4 (default: kcm's API and the AWS KMS API), xks (AWS KMS's calls to
        /// the XKS proxy API only; needs --system) or vault (a token for the
        /// Vault-compatible API only; needs --system).
        #[arg(long, value_parser = ["sigv4", "xks", "vault"])]
        kind: Option<String>,
        /// Restrict the key to one system (name or id).
        #[arg(long, required_if_eq_any([("kind", "xks"), ("kind", "vault")]))]
        system: Option<String>,
        /// Restrict the key to these operations (comma-separated API names, e.g.
        /// Encrypt,Decrypt,GenerateDataKey). Its role still bounds what it may do.
        /// A caller limited itself must set this, to a subset of its own operations.
        #[arg(long, value_delimiter = ',')]
        operations: Option<Vec<String>>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// With --kind xks: also write the key as the XKS proxy configuration file
        /// the AWS KMS console takes (XksProxyUriPath and the credential; mode 0600,
        /// never replacing a file). Its secret is in it: delete it once uploaded.
        #[arg(long, value_name = "FILE", requires = "kind")]
        xks_config: Option<std::path::PathBuf>,
        /// With --xks-config: the server's XksProxyUriPath
        /// (`<uri_path_prefix>/kms/xks/v1` of its `[xks_server]`).
        #[arg(long, default_value = "/kms/xks/v1", requires = "xks_config")]
        xks_uri_path: String,
    },
    /// List access keys.
    List,
    /// Disable an access key.
    Disable {
        /// Access key id.
        id: String,
    },
    /// Enable an access key.
    Enable {
        /// Access key id.
        id: String,
    },
    /// Delete an access key.
    Delete {
        /// Access key id.
        id: String,
    },
}

impl AccessKeyArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        match self.command {
            AccessKeyCommand::Create {
                role,
                kind,
                system,
                operations,
                description,
                xks_config,
                xks_uri_path,
            } => {
                if xks_config.is_some() && kind.as_deref() != Some("xks") {
                    anyhow::bail!("--xks-config goes with --kind xks");
                }
                // Checked before the key is made, so a refusal makes no key.
                if let Some(path) = xks_config.as_ref().filter(|p| p.exists()) {
                    anyhow::bail!(
                        "{} exists: an existing file is never replaced; choose another",
                        path.display()
                    );
                }
                let body = CreateAccessKeyRequest {
                    role: role.unwrap_or_else(|| "key-user".into()),
                    kind,
                    system,
                    description,
                    operations,
                };
                let created = c.rest().create_access_key(&body).await?;
                // Shown before the file is written: if writing fails, the secret
                // is not lost with it.
                output::object(f, &created);
                if let Some(path) = &xks_config {
                    write_xks_config(path, &xks_uri_path, &created)?;
                }
            }
            AccessKeyCommand::List => {
                let out = c.rest().list_access_keys().await?;
                let columns = columns!(AccessKey:
                    access_key_id, kind, role, system, operations, enabled, description);
                output::table(f, &out, &out.access_keys, &columns);
            }
            AccessKeyCommand::Disable { id } => {
                output::object(f, &c.rest().set_access_key_enabled(&id, false).await?)
            }
            AccessKeyCommand::Enable { id } => {
                output::object(f, &c.rest().set_access_key_enabled(&id, true).await?)
            }
            AccessKeyCommand::Delete { id } => {
                c.rest().delete_access_key(&id).await?;
                output::object(f, &json!({"access_key_id": id, "result": "deleted"}));
            }
        }
        Ok(())
    }
}

/// `kcm system …`
#[derive(Args, Debug)]
pub struct SystemArgs {
    #[command(subcommand)]
    command: SystemCommand,
}

#[derive(Subcommand, Debug)]
enum SystemCommand {
    /// Register a system, linked to a root key of your tenant (its system key is
    /// wrapped by that root key), or with --unlinked, linked to none yet.
    Create {
        /// System name.
        name: String,
        /// Kind (kubernetes, storage, application, …).
        #[arg(long, default_value = "application")]
        kind: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// The system's region: where it runs (free form: eu-west-1, dc2, …).
        /// (The global --region is the region kcm's own API calls are signed for.)
        #[arg(long, value_name = "REGION", default_value = "")]
        system_region: String,
        /// A label, as name=value; repeat for more.
        #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Id of the root key to link it to (`kcm root-key list`); default your
        /// tenant's default root key.
        #[arg(long, conflicts_with = "unlinked")]
        root_key: Option<String>,
        /// Register it without a root key; link it later with `kcm system link`.
        #[arg(long)]
        unlinked: bool,
    },
    /// Link an unlinked system to a root key: it gets a fresh system key wrapped
    /// by that root key.
    Link {
        /// System id or name.
        system: String,
        /// Id of the root key; default your tenant's default root key.
        #[arg(long)]
        root_key: Option<String>,
    },
    /// Unlink a system from its root key: its system key is erased. Refused while
    /// the system holds service keys that are not deleted.
    Unlink {
        /// System id or name.
        system: String,
    },
    /// List systems.
    List,
    /// Show a system.
    Show {
        /// System id or name.
        system: String,
    },
    /// Rotate a system's key, online: a fresh system key version is active at once,
    /// then every service key version below is re-wrapped in batches (with a
    /// progress bar), and the old system key versions are erased. Run it again to
    /// resume an interrupted rotation.
    RotateKey {
        /// System id or name.
        system: String,
        /// Key versions re-wrapped per request (1–1000).
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// Move a system below another root key: its system key is re-wrapped; no
    /// service key or ciphertext changes.
    SwitchRoot {
        /// System id or name.
        system: String,
        /// Id of the root key to move it below.
        #[arg(long)]
        root_key: String,
    },
}

impl SystemArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        match self.command {
            SystemCommand::Create {
                name,
                kind,
                description,
                system_region,
                labels,
                root_key,
                unlinked,
            } => {
                let body = CreateSystemRequest {
                    name,
                    kind: Some(kind),
                    description: Some(description),
                    region: Some(system_region),
                    labels: Some(labels.into_iter().collect()),
                    link: Some(!unlinked),
                    root_key_id: root_key,
                };
                output::object(f, &c.rest().create_system(&body).await?);
            }
            SystemCommand::Link { system, root_key } => {
                let body = LinkSystemRequest {
                    root_key_id: root_key,
                };
                output::object(f, &c.rest().link_system(&system, &body).await?);
            }
            SystemCommand::Unlink { system } => {
                output::object(f, &c.rest().unlink_system(&system).await?)
            }
            SystemCommand::List => {
                let out = c.rest().list_systems().await?;
                let columns = columns!(System: id, name, kind, status);
                output::table(f, &out, &out.systems, &columns);
            }
            SystemCommand::Show { system } => {
                output::object(f, &c.rest().get_system(&system).await?)
            }
            SystemCommand::RotateKey { system, batch } => {
                output::object(f, &rotate_system_key(c, &system, batch).await?)
            }
            SystemCommand::SwitchRoot { system, root_key } => {
                let body = SwitchRootKeyRequest {
                    root_key_id: root_key,
                };
                output::object(f, &c.rest().switch_system_root_key(&system, &body).await?);
            }
        }
        Ok(())
    }
}

/// A `--label name=value` argument.
fn parse_label(arg: &str) -> std::result::Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{arg:?} is not NAME=VALUE")),
    }
}

/// Starts a system key rotation (or finds one in progress) and re-wraps every key
/// version below it in batches, showing progress on a terminal.
async fn rotate_system_key(
    c: &Clients,
    system: &str,
    batch: usize,
) -> Result<SystemKeyRotationBody> {
    use std::io::IsTerminal as _;
    let rest = c.rest();
    let rewrap = async |limit| {
        rest.rewrap_system_keys(system, &RewrapParams { limit })
            .await
    };
    // A rotation left unfinished is resumed rather than started again.
    let mut state = rewrap(1).await?;
    if state.rewrapped == 0 && state.remaining == 0 {
        state = rest.rotate_system_key(system).await?;
    }
    let total = state.remaining as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "re-wrapping key versions {bar:30} {pos}/{len} ({eta})",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    while state.remaining > 0 {
        state = rewrap(batch).await?;
        bar.set_position(total.saturating_sub(state.remaining as u64));
    }
    // The call that leaves nothing to re-wrap also erased the old system key versions.
    bar.finish_and_clear();
    Ok(state)
}

/// `kcm root-key …`
#[derive(Args, Debug)]
pub struct RootKeyArgs {
    #[command(subcommand)]
    command: RootKeyCommand,
}

#[derive(Subcommand, Debug)]
enum RootKeyCommand {
    /// Generate a root key inside a keystore (tenant-admin). Its material never
    /// leaves the keystore.
    Create {
        /// Keystore to generate it in: `software` or a configured `[keystores.<name>]`
        /// (default: the server's default keystore).
        #[arg(long)]
        keystore: Option<String>,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Bring your own key, step 1: an RSA public key to wrap your 32 bytes of AES-256
    /// key material to, and a single-use import token (valid 24 hours).
    ImportParams {
        /// Keystore to import into (default: the server's default keystore).
        #[arg(long)]
        keystore: Option<String>,
        /// RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.
        #[arg(long, default_value = "RSAES_OAEP_SHA_256")]
        algorithm: String,
        /// RSA_3072 or RSA_4096.
        #[arg(long, default_value = "RSA_3072")]
        key_spec: String,
        /// Also write the wrapping public key here, as PEM (for `openssl pkeyutl`).
        #[arg(long)]
        public_key_out: Option<std::path::PathBuf>,
    },
    /// Bring your own key, step 2: import the wrapped material as a root key.
    Import {
        /// The token from `kcm root-key import-params`.
        #[arg(long)]
        import_token: String,
        /// File with the wrapped key material (raw bytes, as openssl writes them).
        #[arg(long)]
        wrapped_material: std::path::PathBuf,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Hold your own key (HYOK): make a key that already lives in a keystore, and
    /// stays yours there, a root key; revoking it there cuts off everything below.
    Reference {
        /// Keystore holding the key (default: the server's default keystore).
        #[arg(long)]
        keystore: Option<String>,
        /// The key in the keystore's terms, by the keystore's kind:
        ///
        /// - pkcs11: `label:<CKA_LABEL>` or `id:<CKA_ID in hex>` (a token AES-256
        ///   secret key with CKA_ENCRYPT and CKA_DECRYPT, and a CKA_ID unique on
        ///   the token);
        ///
        /// - xks: the key's externalKeyId at the XKS proxy, as the proxy names it
        ///   (1 to 128 of A-Z a-z 0-9 . - _), for example `customer-root-1`; kcm
        ///   checks it with the proxy's GetKeyMetadata (an AES-256 key that can
        ///   encrypt and decrypt);
        ///
        /// - plugin: whatever the plugin documents (the text is passed to it as is).
        #[arg(verbatim_doc_comment)]
        reference: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List your tenant's root keys.
    List,
    /// Show a root key.
    Show {
        /// Root key id.
        root_key: String,
    },
    /// The kill switch: every system and key below the root key refuses every
    /// operation until it is enabled again.
    Disable(RootKeyChangeArgs),
    /// Every system and key below the root key may only decrypt.
    Suspend(RootKeyChangeArgs),
    /// Undo a disable or suspend: everything below works again.
    Enable(RootKeyChangeArgs),
    /// Mark the root key compromised (NIST SP 800-57): every system and key below
    /// it may only decrypt, so data can be recovered and re-protected under another
    /// root key. Irreversible: a compromised root key is never enabled again.
    Compromise(RootKeyChangeArgs),
    /// New material for a generated root key: the system keys below are re-wrapped
    /// and the old material is destroyed in the keystore.
    Rotate {
        /// Root key id.
        root_key: String,
    },
}

#[derive(Args, Debug)]
struct RootKeyChangeArgs {
    /// Root key id.
    root_key: String,
    /// Change nothing; list the systems and keys the change would affect.
    #[arg(long)]
    dry_run: bool,
}

impl RootKeyArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        let rest = c.rest();
        let (change, args) = match self.command {
            RootKeyCommand::Create {
                keystore,
                description,
            } => {
                let body = CreateRootKeyRequest {
                    keystore,
                    description: Some(description),
                };
                output::object(f, &rest.create_root_key(&body).await?);
                return Ok(());
            }
            RootKeyCommand::ImportParams {
                keystore,
                algorithm,
                key_spec,
                public_key_out,
            } => {
                let body = RootKeyImportParametersRequest {
                    keystore,
                    wrapping_algorithm: Some(algorithm),
                    wrapping_key_spec: Some(key_spec),
                };
                let out = rest.root_key_import_parameters(&body).await?;
                if let Some(path) = public_key_out {
                    std::fs::write(&path, &out.public_key_pem)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                output::object(f, &out);
                return Ok(());
            }
            RootKeyCommand::Import {
                import_token,
                wrapped_material,
                description,
            } => {
                use base64::Engine as _;
                let wrapped = std::fs::read(&wrapped_material)
                    .with_context(|| format!("cannot read {}", wrapped_material.display()))?;
                let body = ImportRootKeyRequest {
                    import_token,
                    wrapped_key_material: base64::engine::general_purpose::STANDARD.encode(wrapped),
                    description: Some(description),
                };
                output::object(f, &rest.import_root_key(&body).await?);
                return Ok(());
            }
            RootKeyCommand::Reference {
                keystore,
                reference,
                description,
            } => {
                let body = ReferenceRootKeyRequest {
                    keystore,
                    reference,
                    description: Some(description),
                };
                output::object(f, &rest.reference_root_key(&body).await?);
                return Ok(());
            }
            RootKeyCommand::List => {
                let out = rest.list_root_keys().await?;
                let columns =
                    columns!(RootKey: id, keystore, keystore_kind, origin, state, default);
                output::table(f, &out, &out.root_keys, &columns);
                return Ok(());
            }
            RootKeyCommand::Show { root_key } => {
                output::object(f, &rest.get_root_key(&root_key).await?);
                return Ok(());
            }
            RootKeyCommand::Rotate { root_key } => {
                let out = rest.rotate_root_key(&root_key).await?;
                output::object_or_text(f, &out, |out| {
                    format!(
                        "root key {} rotated: the system keys of {} system(s) are re-wrapped\n",
                        out.root_key.id,
                        out.systems.len()
                    )
                });
                return Ok(());
            }
            RootKeyCommand::Disable(a) => (RootKeyChange::Disable, a),
            RootKeyCommand::Suspend(a) => (RootKeyChange::Suspend, a),
            RootKeyCommand::Enable(a) => (RootKeyChange::Enable, a),
            RootKeyCommand::Compromise(a) => (RootKeyChange::MarkCompromised, a),
        };
        let params = StateChangeParams {
            dry_run: args.dry_run,
        };
        let out = rest
            .change_root_key_state(&args.root_key, change, &params)
            .await?;
        output::object_or_text(f, &out, describe_impact);
        Ok(())
    }
}

/// The impact of a root key state change as text: what changed (or would), and
/// every system and key below.
fn describe_impact(impact: &RootKeyImpactBody) -> String {
    let id = &impact.root_key.id;
    let (from, to) = (&impact.previous_state, &impact.new_state);
    let mut out = if impact.applied {
        format!("root key {id} is now {to} (was {from})\n")
    } else if from == to {
        format!("root key {id} is already {to}; nothing changed\n")
    } else {
        format!("dry run: root key {id} would go from {from} to {to}; nothing changed\n")
    };
    let keys: usize = impact.systems.iter().map(|s| s.service_keys.len()).sum();
    let objects: u64 = impact.systems.iter().map(|s| s.managed_objects).sum();
    out.push_str(&format!(
        "below it: {} system(s), {keys} service key(s), {objects} managed object(s)\n",
        impact.systems.len()
    ));
    for sys in &impact.systems {
        let mut held = match sys.managed_objects {
            0 => String::new(),
            n => format!(", {n} managed object(s)"),
        };
        if !sys.xks_access_keys.is_empty() {
            held.push_str(&format!(
                ", AWS KMS external key store (XKS access key {})",
                sys.xks_access_keys.join(", ")
            ));
        }
        if !sys.kmip_clients.is_empty() {
            held.push_str(&format!(", KMIP client(s) {}", sys.kmip_clients.join(", ")));
        }
        if !sys.vault_tokens.is_empty() {
            held.push_str(&format!(
                ", Vault API token(s) {}",
                sys.vault_tokens.join(", ")
            ));
        }
        out.push_str(&format!(
            "  {} system {} ({}){held}\n",
            sys.kind, sys.name, sys.id
        ));
        for key in &sys.service_keys {
            out.push_str(&format!("    key {} [{}]\n", key.id, key.state));
        }
    }
    out
}

/// `kcm keychain …`
#[derive(Args, Debug)]
pub struct KeychainArgs {
    #[command(subcommand)]
    command: KeychainCommand,
}

#[derive(Subcommand, Debug)]
enum KeychainCommand {
    /// Draw the tree: root keys → systems → service keys, with states.
    Show,
}

impl KeychainArgs {
    /// Runs the command.
    pub async fn run(self, c: &Clients, f: Format) -> Result<()> {
        let KeychainCommand::Show = self.command;
        let out = c.rest().keychain().await?;
        output::object_or_text(f, &out, draw_keychain);
        Ok(())
    }
}

/// Renders the keychain as an indented tree.
fn draw_keychain(keychain: &Keychain) -> String {
    let tenant = &keychain.tenant;
    let mut out = format!("tenant {} ({})\n", tenant.name, tenant.id);
    let roots = &keychain.root_keys;
    let unlinked = &keychain.unlinked_systems;
    for (ri, root) in roots.iter().enumerate() {
        let last_root = ri + 1 == roots.len() && unlinked.is_empty();
        let (branch, indent) = if last_root {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        out += &format!(
            "{branch} root key {} [{}] keystore={} origin={}\n",
            root.id, root.state, root.keystore, root.origin
        );
        draw_systems(&mut out, indent, &root.systems);
    }
    if !unlinked.is_empty() {
        out += "└─ unlinked systems (no root key)\n";
        draw_systems(&mut out, "   ", unlinked);
    }
    out
}

/// `<kind> system <name>`, e.g. `kubernetes system prod-eu`: what a kill switch
/// reaches, said in the operator's words.
fn system_label(sys: &KeychainSystemNode) -> String {
    match sys.kind.as_str() {
        "" => format!("system {}", sys.name),
        kind => format!("{kind} system {}", sys.name),
    }
}

/// Draws systems with their service keys below a branch indented by `indent`.
fn draw_systems(out: &mut String, indent: &str, systems: &[KeychainSystemNode]) {
    for (si, sys) in systems.iter().enumerate() {
        let last_sys = si + 1 == systems.len();
        let (b2, i2) = if last_sys {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        let key = match &sys.state {
            Some(state) => format!(" system key v{} [{state}]", sys.system_key_version),
            None => String::new(),
        };
        *out += &format!("{indent}{b2} {} [{}]{key}\n", system_label(sys), sys.status);
        let keys = &sys.service_keys;
        for (ki, key) in keys.iter().enumerate() {
            let b3 = if ki + 1 == keys.len() {
                "└─"
            } else {
                "├─"
            };
            let aliases = if key.aliases.is_empty() {
                String::new()
            } else {
                format!(" {}", key.aliases.join(","))
            };
            *out += &format!(
                "{indent}{i2}{b3} key {} [{}] v{}{aliases}\n",
                key.id, key.state, key.primary_version
            );
        }
    }
}

/// Writes `created` as the XKS proxy configuration file of the specification
/// ("XKS proxy configuration in AWS KMS console"), mode 0600, refusing to replace a
/// file: it holds the secret.
fn write_xks_config(
    path: &std::path::Path,
    uri_path: &str,
    created: &kcm_api_types::CreatedAccessKey,
) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // Borrowed, so the secret is not copied into a value nobody wipes.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Credential<'a> {
        access_key_id: &'a str,
        raw_secret_access_key: &'a str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct XksProxyConfiguration<'a> {
        xks_proxy_uri_path: &'a str,
        xks_proxy_authentication_credential: Credential<'a>,
    }
    let config = XksProxyConfiguration {
        xks_proxy_uri_path: uri_path,
        xks_proxy_authentication_credential: Credential {
            access_key_id: &created.access_key.access_key_id,
            raw_secret_access_key: &created.secret_access_key,
        },
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing file is never replaced)",
                path.display()
            )
        })?;
    let text = zeroize::Zeroizing::new(serde_json::to_vec_pretty(&config)?);
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keychain as the server sends it.
    fn keychain(body: Value) -> Keychain {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn keychain_tree_shows_every_level() {
        let v = keychain(json!({
            "tenant": {"id": "t1", "name": "acme", "account_id": "000000000001", "created_at": "2026-01-01T00:00:00Z"},
            "root_keys": [{"id": "r1", "state": "active", "keystore": "software", "origin": "generated",
                "systems": [{"id": "s1", "name": "default", "kind": "kubernetes", "status": "connected", "system_key_version": 1, "state": "active",
                    "service_keys": [{"id": "k1", "description": "", "state": "active", "primary_version": 2, "aliases": ["alias/app"]}]}]}],
            "unlinked_systems": []
        }));
        let text = draw_keychain(&v);
        assert!(text.contains("tenant acme"));
        assert!(text.contains("root key r1 [active]"));
        assert!(
            text.contains("kubernetes system default [connected]"),
            "{text}"
        );
        assert!(text.contains("key k1 [active] v2 alias/app"), "{text}");
        assert!(!text.contains("unlinked"), "{text}");
    }

    #[test]
    fn keychain_tree_shows_unlinked_systems() {
        let v = keychain(json!({
            "tenant": {"id": "t1", "name": "acme", "account_id": "000000000001", "created_at": "2026-01-01T00:00:00Z"},
            "root_keys": [{"id": "r1", "state": "active", "keystore": "software", "origin": "generated", "systems": []}],
            "unlinked_systems": [{"id": "s2", "name": "edge", "status": "unlinked", "system_key_version": 0, "state": null, "service_keys": []}]
        }));
        let text = draw_keychain(&v);
        assert!(text.contains("├─ root key r1"), "{text}");
        assert!(text.contains("└─ unlinked systems"), "{text}");
        assert!(text.contains("   └─ system edge [unlinked]\n"), "{text}");
    }

    #[test]
    fn an_impact_names_each_system_by_its_kind() {
        let impact: RootKeyImpactBody = serde_json::from_value(json!({
            "root_key": {"id": "r1", "keystore": "software", "keystore_kind": "software",
                "origin": "generated", "state": "active", "default": false, "description": "",
                "created_at": "2026-01-01T00:00:00Z"},
            "previous_state": "active", "new_state": "disabled", "applied": false,
            "systems": [{"id": "s1", "name": "prod-eu", "kind": "kubernetes", "status": "connected",
                "system_key_version": 1, "state": "active",
                "service_keys": [{"id": "k1", "description": "", "state": "active",
                    "primary_version": 1, "aliases": []}]}]
        }))
        .unwrap();
        let text = describe_impact(&impact);
        assert!(
            text.contains("dry run: root key r1 would go from active to disabled"),
            "{text}"
        );
        assert!(
            text.contains("  kubernetes system prod-eu (s1)\n"),
            "{text}"
        );
        assert!(text.contains("    key k1 [active]"), "{text}");
    }
}
