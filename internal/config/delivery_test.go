package config

import (
	"strings"
	"testing"
	"time"
)

func TestDeliveryRetryFor(t *testing.T) {
	base := "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"
	c, err := Load(write(t, base), env(nil))
	if err != nil || time.Duration(c.Bots.DeliveryRetryFor) != 24*time.Hour {
		t.Fatalf("default delivery_retry_for = %v, %v; want 24h", time.Duration(c.Bots.DeliveryRetryFor), err)
	}
	c, err = Load(write(t, base+"bots: {delivery_retry_for: 2h}\n"), env(nil))
	if err != nil || time.Duration(c.Bots.DeliveryRetryFor) != 2*time.Hour {
		t.Fatalf("file delivery_retry_for = %v, %v; want 2h", time.Duration(c.Bots.DeliveryRetryFor), err)
	}
	c, err = Load(write(t, base+"bots: {delivery_retry_for: 2h}\n"), env(map[string]string{"PARLEY_BOTS_DELIVERY_RETRY_FOR": "72h"}))
	if err != nil || time.Duration(c.Bots.DeliveryRetryFor) != 72*time.Hour {
		t.Fatalf("env delivery_retry_for = %v, %v; want 72h", time.Duration(c.Bots.DeliveryRetryFor), err)
	}
	for _, v := range []string{"5m", "200h"} {
		if _, err := Load(write(t, base+"bots: {delivery_retry_for: "+v+"}\n"), env(nil)); err == nil || !strings.Contains(err.Error(), "bots.delivery_retry_for") {
			t.Errorf("delivery_retry_for %s: err = %v, want a refusal naming bots.delivery_retry_for", v, err)
		}
	}
	if _, err := Load(write(t, base), env(map[string]string{"PARLEY_BOTS_DELIVERY_RETRY_FOR": "a day"})); err == nil || !strings.Contains(err.Error(), "PARLEY_BOTS_DELIVERY_RETRY_FOR") {
		t.Errorf("bad env: err = %v", err)
	}
}
