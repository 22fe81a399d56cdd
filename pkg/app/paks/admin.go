package paks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// AdminStore is the persistence of the admin PAK. Its methods join the
// transaction that the Transactor carries in the context.
type AdminStore interface {
	// LockBootstrap takes a transaction-scoped lock that serialises the
	// first-start check of concurrently starting replicas.
	LockBootstrap(ctx context.Context) error
	// IsInitialized reports whether app_initialization has a row.
	IsInitialized(ctx context.Context) (bool, error)
	// MarkInitialized inserts the app_initialization row.
	MarkInitialized(ctx context.Context) error
	// SetAdminHash stores hash in the first admin_role row (creating it if
	// there is none) and in the live admin-generator (creating it if
	// absent), and returns the admin hash it replaced ("" for none).
	SetAdminHash(ctx context.Context, hash string) (previous string, err error)
}

// AdminConfig is the broker section's admin settings.
type AdminConfig struct {
	// PinnedHash (broker.pak_hash) is the admin hash to use at first start
	// instead of generating a PAK: 64 hex characters, or empty.
	PinnedHash string
	// PAKFile (broker.admin_pak_file), when set, receives a generated
	// admin PAK with mode 0600.
	PAKFile string
	// Secret (broker.admin_pak_secret), when set, keeps a generated admin
	// PAK instead of stdout: the first start stores it there and prints
	// nothing, and a rotation replaces it.
	Secret PAKStore
}

// PAKStore keeps the admin PAK out of band (a Kubernetes Secret).
type PAKStore interface {
	StorePAK(ctx context.Context, p secret.String) error
	String() string // where, for logs
}

// Admin bootstraps and rotates the admin PAK.
type Admin struct {
	tx     journal.Transactor
	audit  AuditWriter
	store  AdminStore
	issuer authn.PAKIssuer
	inval  authn.Invalidator
	cfg    AdminConfig
	out    io.Writer
	log    *slog.Logger
}

// NewAdmin validates cfg (the error names the bad key) and wires the use
// cases. out receives the one-time "Admin PAK: ..." line; inval may be nil.
func NewAdmin(tx journal.Transactor, audit AuditWriter, store AdminStore, issuer authn.PAKIssuer, inval authn.Invalidator, cfg AdminConfig, out io.Writer, log *slog.Logger) (*Admin, error) {
	cfg.PinnedHash = strings.ToLower(strings.TrimSpace(cfg.PinnedHash))
	if cfg.PinnedHash != "" && !pak.IsHash(cfg.PinnedHash) {
		return nil, fmt.Errorf("broker.pak_hash must be 64 hexadecimal characters (the SHA-256 of the PAK's long token)")
	}
	if out == nil {
		out = io.Discard
	}
	if log == nil {
		log = slog.Default()
	}
	return &Admin{tx: tx, audit: audit, store: store, issuer: issuer, inval: inval, cfg: cfg, out: out, log: log}, nil
}

// AdminResourceType is the resource_type of admin PAK audit entries.
const AdminResourceType = "admin_role"

// Bootstrap runs the first-start initialisation: when app_initialization
// is empty it stores the admin hash (pinned, or of a newly generated PAK)
// in admin_role and admin-generator and records the initialisation, all in
// one transaction under a lock, so of several replicas starting together
// exactly one does it. A generated PAK is stored in the Secret when one is
// configured (and then not printed), otherwise printed once to out; it is
// also written to the PAK file. Later starts change nothing and report false.
func (a *Admin) Bootstrap(ctx context.Context) (bool, error) {
	var generated secret.String
	did := false
	err := a.tx.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.LockBootstrap(ctx); err != nil {
			return err
		}
		done, err := a.store.IsInitialized(ctx)
		if err != nil || done {
			return err
		}
		hash, source := a.cfg.PinnedHash, "pinned"
		if hash == "" {
			if generated, hash, err = a.issuer.Issue(ctx); err != nil {
				return fmt.Errorf("generate admin PAK: %w", err)
			}
			source = "generated"
		}
		if _, err := a.store.SetAdminHash(ctx, hash); err != nil {
			return err
		}
		if err := a.store.MarkInitialized(ctx); err != nil {
			return err
		}
		if err := a.audit.Audit(ctx, adminEntry(audit.ActionPakCreated, source)); err != nil {
			return err
		}
		// Stored before the commit: should it fail, nothing is committed
		// and the next start tries again, so a hash is never stored whose
		// PAK nobody can read. (A commit failing after it leaves an unused
		// PAK in the Secret, which the next start overwrites.)
		if !generated.IsZero() && a.cfg.Secret != nil {
			if err := a.cfg.Secret.StorePAK(ctx, generated); err != nil {
				return fmt.Errorf("store admin PAK in Secret %s: %w", a.cfg.Secret, err)
			}
		}
		did = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("admin bootstrap: %w", err)
	}
	if !did {
		return false, nil
	}
	if generated.IsZero() {
		a.log.InfoContext(ctx, "admin PAK bootstrapped from broker.pak_hash")
		return true, nil
	}
	if a.cfg.Secret != nil {
		a.log.InfoContext(ctx, "admin PAK generated; stored in Kubernetes Secret", "secret", a.cfg.Secret.String(), "pak_file", a.cfg.PAKFile)
	} else {
		a.log.InfoContext(ctx, "admin PAK generated; printed once on stdout", "pak_file", a.cfg.PAKFile)
		if _, err := fmt.Fprintf(a.out, "Admin PAK: %s\n", generated.Reveal()); err != nil {
			return true, fmt.Errorf("print admin PAK: %w", err)
		}
	}
	if err := a.writePAKFile(generated); err != nil {
		return true, err
	}
	return true, nil
}

// RotateAdmin replaces the admin PAK with a newly generated one (also on
// admin-generator), drops the old hash from every api cache and rewrites
// the PAK file and the Secret when configured. The new PAK is returned for
// the caller to show once.
func (a *Admin) RotateAdmin(ctx context.Context) (secret.String, error) {
	newPAK, hash, err := a.issuer.Issue(ctx)
	if err != nil {
		return "", domain.Unavailable("Failed to create PAK", err)
	}
	var previous string
	err = a.tx.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.LockBootstrap(ctx); err != nil {
			return err
		}
		// Rotating before the first start counts as the bootstrap, so
		// that start does not replace the PAK just handed out.
		done, err := a.store.IsInitialized(ctx)
		if err != nil {
			return err
		}
		if !done {
			if err := a.store.MarkInitialized(ctx); err != nil {
				return err
			}
		}
		if previous, err = a.store.SetAdminHash(ctx, hash); err != nil {
			return err
		}
		if err := a.audit.Audit(ctx, adminEntry(audit.ActionPakRotated, "rotated")); err != nil {
			return err
		}
		if a.cfg.Secret != nil {
			if err := a.cfg.Secret.StorePAK(ctx, newPAK); err != nil {
				return fmt.Errorf("store admin PAK in Secret %s: %w", a.cfg.Secret, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("rotate admin PAK: %w", err)
	}
	if previous != "" && previous != hash && a.inval != nil {
		if err := a.inval.Invalidate(ctx, previous); err != nil {
			// The rotation is committed; replicas that missed the message
			// drop their caches when they resubscribe, or at the TTL.
			a.log.WarnContext(ctx, "publishing auth cache invalidation failed", "error", err)
		}
	}
	if err := a.writePAKFile(newPAK); err != nil {
		return newPAK, err
	}
	return newPAK, nil
}

func adminEntry(action, source string) audit.Entry {
	details, _ := json.Marshal(map[string]string{"source": source})
	return audit.Entry{
		ActorType:    string(identity.RoleSystem),
		Action:       action,
		ResourceType: AdminResourceType,
		Details:      details,
	}
}

// writePAKFile writes p to the configured file with mode 0600, atomically
// (temp file + rename) so a reader never sees half a key.
func (a *Admin) writePAKFile(p secret.String) error {
	if a.cfg.PAKFile == "" {
		return nil
	}
	return WriteSecretFile(a.cfg.PAKFile, p.Reveal())
}

// WriteSecretFile writes content to path with mode 0600 (directories it
// creates get 0700), replacing any previous file atomically.
func WriteSecretFile(path, content string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, ".brokkr-pak-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := io.WriteString(f, content); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
