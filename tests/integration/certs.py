"""Test certificates, made by each test with the openssl command.

A test CA signs server certificates (ECDSA P-256 or RSA 2048, with the DNS
names given) and client certificates. Keys are written mode 0600, as ringlb
demands. Everything lives in the test's temporary directory.
"""

import os
import subprocess


def _run(t, args, cwd):
    cp = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, timeout=60)
    if cp.returncode != 0:
        t.fail("openssl %s failed: %s" % (args[0], cp.stderr.decode("utf-8", "replace")[-400:]))
    return cp


class Pki:
    def __init__(self, t, name="ca"):
        self.t = t
        self.dir = os.path.join(t.tmpdir, "pki-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.serial = 1000
        self.ca_key = self._key(name + "-ca", "ec")
        self.ca_cert = os.path.join(self.dir, name + "-ca.crt")
        _run(t, ["req", "-x509", "-new", "-key", self.ca_key, "-sha256", "-days", "3",
                 "-subj", "/CN=ringlb test CA %s" % name, "-out", self.ca_cert,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)

    def _key(self, stem, kind):
        path = os.path.join(self.dir, stem + ".key")
        if kind == "ec":
            args = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        else:
            args = ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        _run(self.t, args + ["-out", path], self.dir)
        os.chmod(path, 0o600)
        return path

    def issue(self, stem, names, kind="ec", client=False, cn=None):
        """Issues a certificate; returns (cert_path, key_path)."""
        key = self._key(stem, kind)
        csr = os.path.join(self.dir, stem + ".csr")
        crt = os.path.join(self.dir, stem + ".crt")
        ext = os.path.join(self.dir, stem + ".ext")
        cn = cn or (names[0].replace("IP:", "") if names else stem)
        _run(self.t, ["req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr], self.dir)
        with open(ext, "w") as f:
            if names:
                f.write("subjectAltName=" + ",".join(
                    n if n.startswith("IP:") else "DNS:" + n for n in names) + "\n")
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            f.write("basicConstraints=CA:FALSE\n")
        self.serial += 1
        _run(self.t, ["x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                      "-set_serial", str(self.serial), "-days", "2", "-sha256",
                      "-extfile", ext, "-out", crt], self.dir)
        return crt, key

    def ocsp_response(self, cert, out):
        """A signed 'good' OCSP response for `cert`, written (DER) to `out`."""
        index = os.path.join(self.dir, "index.txt")
        serial = _run(self.t, ["x509", "-in", cert, "-noout", "-serial"],
                      self.dir).stdout.decode().strip().split("=")[1]
        subj = _run(self.t, ["x509", "-in", cert, "-noout", "-subject", "-nameopt", "compat"],
                    self.dir).stdout.decode().strip().split("=", 1)[1].strip()
        with open(index, "a") as f:
            f.write("V\t291231235959Z\t\t%s\tunknown\t%s\n" % (serial, subj))
        req = out + ".req"
        _run(self.t, ["ocsp", "-issuer", self.ca_cert, "-cert", cert, "-reqout", req,
                      "-no_nonce"], self.dir)
        _run(self.t, ["ocsp", "-index", index, "-rsigner", self.ca_cert, "-rkey", self.ca_key,
                      "-CA", self.ca_cert, "-reqin", req, "-respout", out, "-ndays", "1"],
             self.dir)
        return out


def s_client(t, port, *args, stdin=b"", timeout=20):
    """Runs `openssl s_client` against 127.0.0.1:port; returns (rc, text)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args)
    try:
        cp = subprocess.run(argv, input=stdin, capture_output=True,
                            timeout=t.slow(timeout))
    except subprocess.TimeoutExpired:
        t.fail("openssl s_client did not finish: %s" % " ".join(args))
    return cp.returncode, (cp.stdout + cp.stderr).decode("utf-8", "replace")


def tls_config(certs, **kw):
    """A listener's tls section for [(cert, key), ...]."""
    section = {"certificates": [{"cert": c, "key": k} for c, k in certs]}
    section.update(kw)
    return section
