package reconcile

import "testing"

func TestExpandAsKubernetes(t *testing.T) {
	vars := map[string]string{"POD_NAME": "web-0", "NS": "shop", "EMPTY": ""}
	for in, want := range map[string]string{
		"--name=$(POD_NAME)":       "--name=web-0",
		"$(POD_NAME).$(NS).svc":    "web-0.shop.svc",
		"$(UNDEFINED) stays":       "$(UNDEFINED) stays",
		"$$(POD_NAME) escaped":     "$(POD_NAME) escaped",
		"cost: $5 and $$":          "cost: $5 and $",
		"unclosed $(POD_NAME":      "unclosed $(POD_NAME",
		"empty $(EMPTY)|":          "empty |",
		"$()":                      "$()",
		"no variables at all":      "no variables at all",
		"trailing $":               "trailing $",
		"data/$(POD_NAME)/logs":    "data/web-0/logs",
		"$(POD_NAME)$(POD_NAME)":   "web-0web-0",
		"sh -c 'echo $HOME $(NS)'": "sh -c 'echo $HOME shop'",
		"nested $(P$(NS))":         "nested $(P$(NS))",
		"$$$(NS)":                  "$shop",
		"a$(NS)b":                  "ashopb",
		"$(NS":                     "$(NS",
		"x $( NS )":                "x $( NS )",
		"PATH=$(PATH):/bin":        "PATH=$(PATH):/bin",
		"double $$$$":              "double $$",
		"last var $(NS)":           "last var shop",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
