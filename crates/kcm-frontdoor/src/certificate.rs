//! What a door reads from a client's certificate once TLS has verified it.

/// The subject of the certificate `der` in RFC 4514's form, most specific
/// attribute first (`CN=rgw,O=Example`), as
/// `openssl x509 -noout -subject -nameopt RFC2253` prints it; `None` if it does
/// not parse.
pub fn subject_of(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    Some(certificate.tbs_certificate.subject.to_string())
}
