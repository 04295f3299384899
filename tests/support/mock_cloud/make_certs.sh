#!/usr/bin/env bash
# make_certs.sh DIR [SAN...]: a test CA and a server certificate it signs, plus
# a second, untrusted CA and a certificate from it (the "wrong certificate"
# fault). Default SANs: IP:127.0.0.1, DNS:localhost. Writes into DIR:
#   ca.pem               the CA the client trusts (give it as --ca-file)
#   server.pem server.key the mock's certificate (chain: leaf) and key
#   wrong-ca.pem wrong.pem wrong.key   a CA nobody trusts and its leaf
# Uses the openssl CLI only; EC P-256 keys, valid 2 days; takes ~0.1 s.
set -euo pipefail
dir=$1
shift
sans=${*:-IP:127.0.0.1 DNS:localhost}
san=$(echo "$sans" | tr ' ' ',')
mkdir -p "$dir"
cd "$dir"
mk_ca() { # mk_ca NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
}
mk_leaf() { # mk_leaf NAME CA
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mock-cloud" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
mk_ca ca "Tidegate test CA"
mk_leaf server ca
mk_ca wrong-ca "Untrusted test CA"
mk_leaf wrong wrong-ca
rm -f ./*.srl
