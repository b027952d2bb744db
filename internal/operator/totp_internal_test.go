package operator

import "time"

var epochTOTP = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
