package etcdserver

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/auth"
)

// RootUser is the etcd user RootPassword belongs to.
const RootUser = "root"

// ErrWrongRootPassword: authentication is enabled and RootPassword is not
// root's password.
var ErrWrongRootPassword = errors.New("the root password (cluster token) does not match this etcd's: its data was created with another token")

// ensureAuth makes root's password pw and enables authentication, through
// the server's own API (no network, no credential needed while
// authentication is off). It is idempotent and safe to run on every member
// of a new cluster at once.
func (s *Server) ensureAuth(ctx context.Context, pw string) error {
	as := s.etcd.Server.AuthStore()
	for range 3 {
		if as.IsAuthEnabled() {
			if _, err := as.CheckPassword(RootUser, pw); err != nil {
				return ErrWrongRootPassword
			}
			return nil
		}
		err := s.enableAuth(ctx, pw)
		if err == nil {
			return nil
		}
		if !as.IsAuthEnabled() {
			return fmt.Errorf("enable authentication: %w", err)
		}
		// Another member enabled it meanwhile: check the password.
	}
	return errors.New("enable authentication: it keeps changing")
}

func (s *Server) enableAuth(ctx context.Context, pw string) error {
	srv := s.etcd.Server
	_, err := srv.UserAdd(ctx, &pb.AuthUserAddRequest{Name: RootUser, Password: pw})
	if errors.Is(err, auth.ErrUserAlreadyExist) {
		_, err = srv.UserChangePassword(ctx, &pb.AuthUserChangePasswordRequest{Name: RootUser, Password: pw})
	}
	if err != nil {
		return fmt.Errorf("root user: %w", err)
	}
	if _, err := srv.UserGrantRole(ctx, &pb.AuthUserGrantRoleRequest{User: RootUser, Role: "root"}); err != nil {
		return fmt.Errorf("root role: %w", err)
	}
	if _, err := srv.AuthEnable(ctx, &pb.AuthEnableRequest{}); err != nil {
		return fmt.Errorf("auth enable: %w", err)
	}
	return nil
}
