// Package clusterauth holds what makes a fleet cluster's etcd private: the
// cluster token, and the TLS certificates derived from it.
//
// Contract:
//  1. The cluster token is a secret of at least MinTokenLength printable
//     characters, kept in a file of mode 0600 (TokenFileName under the data
//     dir of the fleetd that bootstrapped the embedded etcd). WriteToken and
//     EnsureToken create it with mode 0600 whatever the umask; ReadToken
//     warns when group or others may read it.
//  2. The token is etcd's password of RootUser: every client (fleetd,
//     fleetd lb, fleetd confd, fleetd etcd) authenticates with it.
//  3. DeriveAuthority turns the token into a certificate authority: the
//     same token gives the same CA key and certificate on every machine, so
//     members and clients that hold the token trust each other's
//     certificates with no files to copy. Issue makes a leaf (server and
//     client use) for this member's hosts, with a fresh key.
//  4. Credentials.Resolve turns the client-side settings (token file, user
//     name and password, TLS files, endpoints) into what clientv3 needs,
//     refusing plain HTTP beyond loopback unless Insecure.
//  5. Explain turns etcd's authentication errors into messages that name
//     the flag to fix.
package clusterauth
