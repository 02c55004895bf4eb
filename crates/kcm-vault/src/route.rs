//! Which endpoint a request is: Vault's paths below `/v1/`, by method.

use http::Method;
use kcm_core::authz::Op;
use kcm_core::kv::KvVersionAction;

/// Where the engines are mounted: the first segment of their paths below `/v1/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mounts {
    /// The Transit engine (`transit`).
    pub transit: String,
    /// The KV version 2 engine (`secret`).
    pub kv: String,
}

/// One endpoint of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/sys/health` (no token).
    SysHealth,
    /// `GET /v1/sys/seal-status` (no token).
    SysSealStatus,
    /// `GET /v1/sys/mounts`.
    SysMounts,
    /// `GET /v1/sys/internal/ui/mounts/<path>`: the mount a path is in.
    SysMountOf(String),
    /// `GET|POST /v1/auth/token/lookup-self`.
    TokenLookupSelf,
    /// `POST /v1/auth/token/renew-self`.
    TokenRenewSelf,
    /// `POST /v1/auth/kubernetes/login` (no token: a service account's JWT).
    KubernetesLogin,
    /// `LIST /v1/<transit>/keys` (or `GET …?list=true`).
    ListKeys,
    /// `POST /v1/<transit>/keys/<name>`.
    CreateKey(String),
    /// `GET /v1/<transit>/keys/<name>`.
    ReadKey(String),
    /// `DELETE /v1/<transit>/keys/<name>`.
    DeleteKey(String),
    /// `POST /v1/<transit>/keys/<name>/config`.
    ConfigureKey(String),
    /// `POST /v1/<transit>/keys/<name>/rotate`.
    RotateKey(String),
    /// `POST /v1/<transit>/encrypt/<name>`.
    Encrypt(String),
    /// `POST /v1/<transit>/decrypt/<name>`.
    Decrypt(String),
    /// `POST /v1/<transit>/rewrap/<name>`.
    Rewrap(String),
    /// `POST /v1/<transit>/datakey/plaintext|wrapped/<name>`.
    DataKey {
        /// Whether the plaintext is returned too.
        plaintext: bool,
        /// The key.
        name: String,
    },
    /// `POST /v1/<transit>/random[/<bytes>]`.
    Random(Option<String>),
    /// `POST /v1/<transit>/hash[/<algorithm>]`.
    Hash(Option<String>),
    /// `POST /v1/<transit>/sign/<name>[/<hash>]`.
    Sign {
        /// The key.
        name: String,
        /// The hash the path names.
        hash: Option<String>,
    },
    /// `POST /v1/<transit>/verify/<name>[/<hash>]`: a signature or an HMAC.
    Verify {
        /// The key.
        name: String,
        /// The hash the path names.
        hash: Option<String>,
    },
    /// `POST /v1/<transit>/hmac/<name>[/<algorithm>]`.
    Hmac {
        /// The key.
        name: String,
        /// The hash the path names.
        hash: Option<String>,
    },
    /// `GET /v1/<kv>/data/<path>[?version=N]`.
    KvRead {
        /// The secret's path.
        path: String,
        /// The `version` asked for, as sent.
        version: Option<String>,
    },
    /// `POST|PUT /v1/<kv>/data/<path>`: a new version.
    KvWrite(String),
    /// `DELETE /v1/<kv>/data/<path>`: deletes the current version.
    KvDeleteLatest(String),
    /// `POST /v1/<kv>/delete|undelete|destroy/<path>`: chosen versions.
    KvVersions {
        /// What is done to them.
        action: KvVersionAction,
        /// The secret's path.
        path: String,
    },
    /// `GET /v1/<kv>/metadata/<path>`.
    KvReadMetadata(String),
    /// `POST|PUT /v1/<kv>/metadata/<path>`: settings and custom metadata.
    KvWriteMetadata(String),
    /// `DELETE /v1/<kv>/metadata/<path>`: the secret, all versions.
    KvDeleteMetadata(String),
    /// `LIST /v1/<kv>/metadata/[<prefix>]`: the names below a folder.
    KvList(String),
}

/// Why a request has no endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No endpoint has this path.
    UnknownPath,
    /// The path is an endpoint's, the method is not.
    MethodNotAllowed,
}

impl Route {
    /// The core operation the endpoint is, for authorisation and the audit log;
    /// `None` for those that act on no key (health, mounts, the token itself,
    /// hashing), named by [`Route::name`].
    pub fn op(&self) -> Option<Op> {
        Some(match self {
            Route::ListKeys => Op::ListAliases,
            Route::CreateKey(_) => Op::CreateKey,
            Route::ReadKey(_) => Op::DescribeKey,
            Route::DeleteKey(_) => Op::ScheduleKeyDeletion,
            Route::ConfigureKey(_) => Op::TagResource,
            Route::RotateKey(_) => Op::RotateKeyOnDemand,
            Route::Encrypt(_) => Op::Encrypt,
            Route::Decrypt(_) => Op::Decrypt,
            Route::Rewrap(_) => Op::ReEncrypt,
            Route::DataKey {
                plaintext: true, ..
            } => Op::GenerateDataKey,
            Route::DataKey {
                plaintext: false, ..
            } => Op::GenerateDataKeyWithoutPlaintext,
            Route::Random(_) => Op::GenerateRandom,
            Route::Sign { .. } => Op::Sign,
            Route::Verify { .. } => Op::Verify,
            Route::Hmac { .. } => Op::GenerateMac,
            Route::KvRead { .. } => Op::GetObjectPayload,
            Route::KvWrite(_)
            | Route::KvDeleteLatest(_)
            | Route::KvWriteMetadata(_)
            | Route::KvVersions {
                action: KvVersionAction::Delete | KvVersionAction::Undelete,
                ..
            } => Op::UpdateObject,
            Route::KvVersions {
                action: KvVersionAction::Destroy,
                ..
            }
            | Route::KvDeleteMetadata(_) => Op::DeleteObject,
            Route::KvReadMetadata(_) => Op::GetObject,
            Route::KvList(_) => Op::ListObjects,
            _ => return None,
        })
    }

    /// The audit name of an endpoint that is no core operation.
    pub fn name(&self) -> &'static str {
        match self {
            Route::SysHealth => "VaultSysHealth",
            Route::SysSealStatus => "VaultSysSealStatus",
            Route::SysMounts | Route::SysMountOf(_) => "VaultSysMounts",
            Route::TokenLookupSelf => "VaultTokenLookupSelf",
            Route::TokenRenewSelf => "VaultTokenRenewSelf",
            Route::KubernetesLogin => "VaultKubernetesLogin",
            Route::Hash(_) => "VaultTransitHash",
            _ => "VaultTransit",
        }
    }

    /// Whether the endpoint is one of the KV engine's.
    pub fn is_kv(&self) -> bool {
        matches!(
            self,
            Route::KvRead { .. }
                | Route::KvWrite(_)
                | Route::KvDeleteLatest(_)
                | Route::KvVersions { .. }
                | Route::KvReadMetadata(_)
                | Route::KvWriteMetadata(_)
                | Route::KvDeleteMetadata(_)
                | Route::KvList(_)
        )
    }

    /// Whether the endpoint answers without a token (as Vault's do).
    pub fn is_public(&self) -> bool {
        matches!(self, Route::SysHealth | Route::SysSealStatus)
    }
}

/// `LIST`, Vault's method for listings (`GET ?list=true` is the same).
pub fn is_list(method: &Method, query: Option<&str>) -> bool {
    method.as_str() == "LIST"
        || (method == Method::GET && query.is_some_and(|q| q.split('&').any(|p| p == "list=true")))
}

/// The endpoint of `method` on `path` (below `/v1/`), with the engines at `mounts`.
pub fn route(
    method: &Method,
    path: &str,
    query: Option<&str>,
    mounts: &Mounts,
) -> Result<Route, NoRoute> {
    let path = path.strip_prefix("/v1/").ok_or(NoRoute::UnknownPath)?;
    // Vault (Go's net/http) routes on the decoded path: `a%20b` is the secret `a b`.
    let path = percent_decoded(path).ok_or(NoRoute::UnknownPath)?;
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let list = is_list(method, query);
    let get = *method == Method::GET || *method == Method::HEAD;
    let write = *method == Method::POST || *method == Method::PUT;
    let allow = |ok: bool, r: Route| {
        if ok {
            Ok(r)
        } else {
            Err(NoRoute::MethodNotAllowed)
        }
    };
    let name = |s: &str| s.to_owned();
    match parts.as_slice() {
        ["sys", "health"] => allow(get, Route::SysHealth),
        ["sys", "seal-status"] => allow(get, Route::SysSealStatus),
        ["sys", "mounts"] => allow(get, Route::SysMounts),
        ["sys", "internal", "ui", "mounts", rest @ ..] if !rest.is_empty() => {
            allow(get, Route::SysMountOf(rest.join("/")))
        }
        ["auth", "token", "lookup-self"] => allow(get || write, Route::TokenLookupSelf),
        ["auth", "token", "renew-self"] => allow(write, Route::TokenRenewSelf),
        ["auth", "kubernetes", "login"] => allow(write, Route::KubernetesLogin),
        [mount, rest @ ..] if *mount == mounts.kv => kv_route(method, rest, query, list),
        [mount, rest @ ..] if *mount == mounts.transit => match rest {
            ["keys"] => allow(list, Route::ListKeys),
            ["keys", key] if list => Err(if key.is_empty() {
                NoRoute::UnknownPath
            } else {
                NoRoute::MethodNotAllowed
            }),
            ["keys", key] if write => Ok(Route::CreateKey(name(key))),
            ["keys", key] if get => Ok(Route::ReadKey(name(key))),
            ["keys", key] if *method == Method::DELETE => Ok(Route::DeleteKey(name(key))),
            ["keys", _] => Err(NoRoute::MethodNotAllowed),
            ["keys", key, "config"] => allow(write, Route::ConfigureKey(name(key))),
            ["keys", key, "rotate"] => allow(write, Route::RotateKey(name(key))),
            ["encrypt", key] => allow(write, Route::Encrypt(name(key))),
            ["decrypt", key] => allow(write, Route::Decrypt(name(key))),
            ["rewrap", key] => allow(write, Route::Rewrap(name(key))),
            ["datakey", kind @ ("plaintext" | "wrapped"), key] => allow(
                write,
                Route::DataKey {
                    plaintext: *kind == "plaintext",
                    name: name(key),
                },
            ),
            ["random"] => allow(write, Route::Random(None)),
            ["random", bytes] => allow(write, Route::Random(Some(name(bytes)))),
            [action @ ("sign" | "verify" | "hmac"), key, hash @ ..] if hash.len() <= 1 => {
                let (name, hash) = (name(key), hash.first().map(|h| name(h)));
                allow(
                    write,
                    match *action {
                        "sign" => Route::Sign { name, hash },
                        "verify" => Route::Verify { name, hash },
                        _ => Route::Hmac { name, hash },
                    },
                )
            }
            ["hash"] => allow(write, Route::Hash(None)),
            ["hash", algorithm] => allow(write, Route::Hash(Some(name(algorithm)))),
            _ => Err(NoRoute::UnknownPath),
        },
        _ => Err(NoRoute::UnknownPath),
    }
}

/// `path` with its `%XX` escapes decoded; `None` for a broken escape or bytes
/// that are not UTF-8.
fn percent_decoded(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_owned());
    }
    let mut bytes = Vec::with_capacity(path.len());
    let mut rest = path.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A KV version 2 endpoint: `rest` is the path below the mount.
fn kv_route(
    method: &Method,
    rest: &[&str],
    query: Option<&str>,
    list: bool,
) -> Result<Route, NoRoute> {
    let Some((area, path)) = rest.split_first() else {
        return Err(NoRoute::UnknownPath);
    };
    let path = path.join("/");
    let write = *method == Method::POST || *method == Method::PUT;
    let delete = *method == Method::DELETE;
    let get = *method == Method::GET || *method == Method::HEAD;
    if *area == "metadata" && list {
        return Ok(Route::KvList(path));
    }
    if path.is_empty() {
        return Err(NoRoute::UnknownPath);
    }
    let action = |action| {
        if write {
            Ok(Route::KvVersions {
                action,
                path: path.clone(),
            })
        } else {
            Err(NoRoute::MethodNotAllowed)
        }
    };
    match *area {
        "data" if get => Ok(Route::KvRead {
            version: query.and_then(|q| {
                q.split('&')
                    .find_map(|p| p.strip_prefix("version="))
                    .map(str::to_owned)
            }),
            path,
        }),
        "data" if write => Ok(Route::KvWrite(path)),
        "data" if delete => Ok(Route::KvDeleteLatest(path)),
        "metadata" if get => Ok(Route::KvReadMetadata(path)),
        "metadata" if write => Ok(Route::KvWriteMetadata(path)),
        "metadata" if delete => Ok(Route::KvDeleteMetadata(path)),
        "data" | "metadata" => Err(NoRoute::MethodNotAllowed),
        "delete" => action(KvVersionAction::Delete),
        "undelete" => action(KvVersionAction::Undelete),
        "destroy" => action(KvVersionAction::Destroy),
        _ => Err(NoRoute::UnknownPath),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Result<Route, NoRoute> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        route(
            &Method::from_bytes(method.as_bytes()).unwrap(),
            path,
            query,
            &Mounts {
                transit: "transit".into(),
                kv: "secret".into(),
            },
        )
    }

    #[test]
    fn vaults_paths_route_by_method() {
        assert_eq!(r("GET", "/v1/sys/health"), Ok(Route::SysHealth));
        assert_eq!(r("LIST", "/v1/transit/keys"), Ok(Route::ListKeys));
        assert_eq!(r("GET", "/v1/transit/keys?list=true"), Ok(Route::ListKeys));
        assert_eq!(
            r("GET", "/v1/transit/keys/k"),
            Ok(Route::ReadKey("k".into()))
        );
        assert_eq!(
            r("PUT", "/v1/transit/keys/k"),
            Ok(Route::CreateKey("k".into()))
        );
        assert_eq!(
            r("DELETE", "/v1/transit/keys/k"),
            Ok(Route::DeleteKey("k".into()))
        );
        assert_eq!(
            r("POST", "/v1/transit/datakey/plaintext/k"),
            Ok(Route::DataKey {
                plaintext: true,
                name: "k".into()
            })
        );
        assert_eq!(
            r("POST", "/v1/transit/encrypt/k/"),
            Ok(Route::Encrypt("k".into()))
        );
        assert_eq!(
            r("GET", "/v1/transit/encrypt/k"),
            Err(NoRoute::MethodNotAllowed)
        );
        assert_eq!(
            r("POST", "/v1/transit/datakey/other/k"),
            Err(NoRoute::UnknownPath)
        );
        assert_eq!(r("POST", "/v1/other/data/k"), Err(NoRoute::UnknownPath));
        assert_eq!(r("GET", "/v2/sys/health"), Err(NoRoute::UnknownPath));
        assert_eq!(
            r("POST", "/v1/transit/sign/k/sha2-384"),
            Ok(Route::Sign {
                name: "k".into(),
                hash: Some("sha2-384".into())
            })
        );
        assert_eq!(
            r("POST", "/v1/transit/hmac/k"),
            Ok(Route::Hmac {
                name: "k".into(),
                hash: None
            })
        );
        assert_eq!(
            r("POST", "/v1/transit/verify/k/a/b"),
            Err(NoRoute::UnknownPath)
        );
        assert_eq!(
            r("GET", "/v1/sys/internal/ui/mounts/transit/keys"),
            Ok(Route::SysMountOf("transit/keys".into()))
        );
    }

    #[test]
    fn kv_paths_route_by_area_and_method() {
        assert_eq!(
            r("GET", "/v1/secret/data/a/b?version=2"),
            Ok(Route::KvRead {
                path: "a/b".into(),
                version: Some("2".into())
            })
        );
        assert_eq!(
            r("POST", "/v1/secret/data/a/b"),
            Ok(Route::KvWrite("a/b".into()))
        );
        assert_eq!(
            r("DELETE", "/v1/secret/data/a"),
            Ok(Route::KvDeleteLatest("a".into()))
        );
        assert_eq!(
            r("POST", "/v1/secret/destroy/a"),
            Ok(Route::KvVersions {
                action: KvVersionAction::Destroy,
                path: "a".into()
            })
        );
        assert_eq!(
            r("LIST", "/v1/secret/metadata"),
            Ok(Route::KvList("".into()))
        );
        assert_eq!(
            r("GET", "/v1/secret/metadata/a/?list=true"),
            Ok(Route::KvList("a".into()))
        );
        assert_eq!(
            r("GET", "/v1/secret/metadata/a"),
            Ok(Route::KvReadMetadata("a".into()))
        );
        assert_eq!(r("GET", "/v1/secret/data/"), Err(NoRoute::UnknownPath));
        assert_eq!(
            r("GET", "/v1/secret/undelete/a"),
            Err(NoRoute::MethodNotAllowed)
        );
        assert_eq!(
            r("PATCH", "/v1/secret/data/a"),
            Err(NoRoute::MethodNotAllowed)
        );
        assert_eq!(r("GET", "/v1/secret/config"), Err(NoRoute::UnknownPath));
        assert_eq!(
            r("GET", "/v1/secret/metadata/a%20b%2Fc"),
            Ok(Route::KvReadMetadata("a b/c".into()))
        );
        for broken in [
            "/v1/secret/data/a%2",
            "/v1/secret/data/a%zz",
            "/v1/secret/data/%ff",
        ] {
            assert_eq!(r("GET", broken), Err(NoRoute::UnknownPath), "{broken}");
        }
    }
}
