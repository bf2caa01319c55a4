package helm

import "testing"

func TestSmoke(t *testing.T) {
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		t.Log(r.name, r.kinds())
	}
}
