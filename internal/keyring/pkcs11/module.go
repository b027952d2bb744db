//go:build pkcs11

package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 module is process-wide state: C_Initialize may be called once
// per process and C_Finalize ends every user of the library, so providers
// (and tests) that load the same module share one context, counted here.
// This is the package's only global, and it mirrors the C library's own.
var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

type module struct {
	ctx  *pkcs11.Ctx
	refs int
	// owned is false when someone else in the process had initialized the
	// library already: then it is not finalized here either.
	owned bool
	// logins counts the providers logged in to each slot: a login belongs
	// to the whole process, so only the last of them logs out.
	logins map[uint]int
}

// countLogin adds delta to the providers logged in to slot and returns the
// new count.
func countLogin(path string, slot uint, delta int) int {
	modules.Lock()
	defer modules.Unlock()
	m, ok := modules.m[path]
	if !ok {
		return 0
	}
	m.logins[slot] += delta
	return m.logins[slot]
}

// openModule loads and initializes the library at path, or shares the
// context that is already open.
func openModule(path string) (*pkcs11.Ctx, error) {
	modules.Lock()
	defer modules.Unlock()
	if m, ok := modules.m[path]; ok {
		m.refs++
		return m.ctx, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load PKCS#11 module %s: %w; set keys.pkcs11.module to the vendor's library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so, see `dpkg -L libsofthsm2`)", path, err)
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("load PKCS#11 module %s: it cannot be loaded or is not a PKCS#11 library (no C_GetFunctionList); set keys.pkcs11.module to the vendor's PKCS#11 .so for this architecture", path)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("initialize PKCS#11 module %s: %w (for SoftHSM2, check that SOFTHSM2_CONF names a readable configuration and its tokendir exists)", path, err)
		}
		owned = false
	}
	modules.m[path] = &module{ctx: ctx, refs: 1, owned: owned, logins: map[uint]int{}}
	return ctx, nil
}

// closeModule drops one reference; the last one finalizes and unloads.
func closeModule(path string) {
	modules.Lock()
	defer modules.Unlock()
	m, ok := modules.m[path]
	if !ok {
		return
	}
	if m.refs--; m.refs > 0 {
		return
	}
	delete(modules.m, path)
	if m.owned {
		_ = m.ctx.Finalize()
	}
	m.ctx.Destroy()
}
