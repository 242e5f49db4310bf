//! A test CA and a server certificate for 127.0.0.1 / localhost, made
//! with the openssl command line (Debian package openssl).

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of a test certificate chain.
#[derive(Debug, Clone)]
pub struct Certs {
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The CA's key (PEM), to sign client certificates.
    pub ca_key: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM, mode 0600).
    pub key: PathBuf,
}

/// Makes a CA and a server certificate in `dir`; `owner` (uid, gid) gets
/// the server's files when a server runs as another user.
pub fn make(dir: &Path, owner: Option<(u32, u32)>) -> Certs {
    let openssl = |args: &[&str]| openssl(dir, args);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=omnigate test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write san.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, PermissionsExt::from_mode(0o600)).expect("chmod the key");
    if let Some((uid, gid)) = owner {
        for file in ["server.key", "server.pem"] {
            chown(dir.join(file), Some(uid), Some(gid)).expect("chown the certificate");
        }
    }
    Certs {
        ca: dir.join("ca.pem"),
        ca_key: dir.join("ca.key"),
        cert: dir.join("server.pem"),
        key,
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A client certificate for mutual TLS: its subject's common name is
/// `name`, its DNS name `<name>.clients.test`; signed by `ca`. The
/// certificate and key files (PEM), in `ca`'s directory.
pub fn client(ca: &Certs, name: &str) -> (PathBuf, PathBuf) {
    let dir = ca.ca.parent().expect("the CA's directory");
    let (cert, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(&ext),
        format!(
            "subjectAltName=DNS:{name}.clients.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
        ),
    )
    .expect("write the extension file");
    let (ca_pem, ca_key) = (ca.ca.display().to_string(), ca.ca_key.display().to_string());
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(cert), dir.join(key))
}
