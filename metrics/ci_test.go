package metrics

import "os"

func testingCI() bool { return os.Getenv("CI") == "true" }
