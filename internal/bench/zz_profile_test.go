package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
)

func TestZZProfileLoad(t *testing.T) {
	dl := os.Getenv("ZZ_TARGET")
	if dl == "" {
		t.Skip()
	}
	pid, _ := strconv.Atoi(os.Getenv("ZZ_PID"))
	n, _ := strconv.Atoi(os.Getenv("ZZ_MSGS"))
	r, err := Load(context.Background(), Target{DirectLine: dl}, 10, n, pid)
	t.Logf("%+v %v", r, err)
}
