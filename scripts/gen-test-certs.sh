#!/bin/sh
# scripts/gen-test-certs.sh: throwaway certificates for trying out midge's TLS
# listeners (and for its integration tests, which call this script).
#
#   scripts/gen-test-certs.sh DIR [CLIENT_CN ...]
#
# Makes DIR (if needed) and writes into it, with the openssl command-line tool,
# EC P-256 keys and PEM files:
#
#   ca.crt ca.key              a CA ("midge test CA"), valid 10 years
#   server.crt server.key      server certificate for localhost, 127.0.0.1 and ::1
#   server2.crt server2.key    a second, different server certificate for the same
#                              names (to try replacing a certificate and SIGHUP)
#   wrongname.crt wrongname.key  server certificate for "wrong.invalid" only: a
#                              client that checks host names must refuse it
#   client-CN.crt client-CN.key  one client certificate per CLIENT_CN (default:
#                              "client"), subject "/O=midge test/OU=clients/CN=CN"
#   expired.crt expired.key    client certificate (CN "expired") that expired in 2020
#   revoked.crt revoked.key    client certificate (CN "revoked"), listed in crl.pem
#   crl.pem                    the CA's certificate revocation list
#   other-ca.crt other-ca.key  a second, unrelated CA ("midge other CA")
#   other-client.crt other-client.key  a client certificate (CN "alice") from that
#                              other CA: same name, wrong issuer
#
# Everything here is for tests only: the keys are unencrypted and readable.
# Example, a TLS listener in midge.yaml:
#
#   listeners:
#     - port: 8883
#       cafile: DIR/ca.crt
#       certfile: DIR/server.crt
#       keyfile: DIR/server.key
#       require_certificate: true
#
# and a client:  mosquitto_pub -p 8883 --cafile DIR/ca.crt \
#                  --cert DIR/client-client.crt --key DIR/client-client.key -t t -m hi
set -eu

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
	sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
	exit 2
fi
dir=$1
shift
[ $# -eq 0 ] && set -- client
command -v openssl >/dev/null || { echo "gen-test-certs: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

# newkey NAME: an EC P-256 key in NAME.key.
newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

# selfsigned NAME SUBJECT: a CA certificate.
selfsigned() {
	newkey "$1"
	openssl req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -subj "$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash"
}

# The CA keeps an openssl-ca database so that it can sign certificates with
# chosen dates (the expired one) and revoke one.
ca_config() {
	# $1: CA name (ca or other-ca)
	mkdir -p "$1.db"
	[ -f "$1.db/index.txt" ] || : > "$1.db/index.txt"
	[ -f "$1.db/serial" ] || openssl rand -hex 8 > "$1.db/serial"
	[ -f "$1.db/crlnumber" ] || echo 01 > "$1.db/crlnumber"
	cat > "$1.db/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca
[ this_ca ]
dir = $1.db
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir
certificate = $1.crt
private_key = $1.key
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = anything
unique_subject = no
copy_extensions = copy
[ anything ]
commonName = supplied
organizationName = optional
organizationalUnitName = optional
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EOF
}

# sign CA NAME SUBJECT EXT [openssl-ca options...]: NAME.key/NAME.crt signed by CA.
sign() {
	ca=$1 name=$2 subj=$3 ext=$4
	shift 4
	newkey "$name"
	if [ "$ext" = server_ext ]; then
		openssl req -new -key "$name.key" -out "$name.csr" -subj "$subj" \
			-addext "subjectAltName=$SAN"
	else
		openssl req -new -key "$name.key" -out "$name.csr" -subj "$subj"
	fi
	openssl ca -batch -notext -preserveDN -config "$ca.db/ca.cnf" -extensions "$ext" \
		-in "$name.csr" -out "$name.crt" "$@" 2>/dev/null
	rm -f "$name.csr"
}

selfsigned ca "/O=midge test/CN=midge test CA"
ca_config ca
selfsigned other-ca "/O=midge other/CN=midge other CA"
ca_config other-ca

SAN="DNS:localhost,IP:127.0.0.1,IP:::1"
sign ca server "/O=midge test/CN=localhost" server_ext
sign ca server2 "/O=midge test/OU=second/CN=localhost" server_ext
SAN="DNS:wrong.invalid"
sign ca wrongname "/O=midge test/CN=wrong.invalid" server_ext

for cn in "$@"; do
	sign ca "client-$cn" "/O=midge test/OU=clients/CN=$cn" client_ext
done
sign ca expired "/O=midge test/OU=clients/CN=expired" client_ext \
	-startdate 20200101000000Z -enddate 20200102000000Z
sign ca revoked "/O=midge test/OU=clients/CN=revoked" client_ext
openssl ca -batch -config ca.db/ca.cnf -revoke revoked.crt 2>/dev/null
openssl ca -batch -config ca.db/ca.cnf -gencrl -out crl.pem 2>/dev/null
sign other-ca other-client "/O=midge test/OU=clients/CN=alice" client_ext

# The brokers under test may run as another user: let them read everything.
chmod 0644 ./*.crt ./*.key crl.pem
echo "gen-test-certs: certificates written to $(pwd)" >&2
