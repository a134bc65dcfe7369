package grammar

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
)

func randDecimalString(rng *rand.Rand, integer bool) string {
	s := ""
	if rng.IntN(3) == 0 {
		s = "-"
	}
	switch rng.IntN(4) {
	case 0:
		s += "0"
	default:
		s += fmt.Sprint(rng.IntN(9) + 1)
		for range rng.IntN(4) {
			s += fmt.Sprint(rng.IntN(10))
		}
	}
	if !integer && rng.IntN(2) == 0 {
		s += "."
		for range 1 + rng.IntN(4) {
			s += fmt.Sprint(rng.IntN(10))
		}
	}
	return s
}

// TestNumberRanges: for random bounds (either may be missing), the
// integer and decimal grammars match exactly the numbers within them, on
// random decimal strings (and none with leading zeros).
func TestNumberRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		integer := rng.IntN(2) == 0
		var lo, hi *big.Rat
		var e *expr
		var loD, hiD *decimal
		var loI, hiI *big.Int
		if rng.IntN(4) > 0 {
			d, err := parseDecimal(json.Number(randDecimalString(rng, integer)))
			if err != nil {
				t.Fatal(err)
			}
			loD = &d
		}
		if rng.IntN(4) > 0 {
			d, err := parseDecimal(json.Number(randDecimalString(rng, integer)))
			if err != nil {
				t.Fatal(err)
			}
			hiD = &d
		}
		if loD != nil && hiD != nil && loD.rat().Cmp(hiD.rat()) > 0 {
			loD, hiD = hiD, loD
		}
		if loD != nil {
			lo = loD.rat()
			loI = new(big.Int).Quo(lo.Num(), lo.Denom())
		}
		if hiD != nil {
			hi = hiD.rat()
			hiI = new(big.Int).Quo(hi.Num(), hi.Denom())
		}
		if integer {
			e = integerRange(loI, hiI)
		} else {
			e = decimalRange(loD, hiD)
		}
		g := newGrammar("root")
		g.define("root", e)
		c, err := g.Compile()
		if err != nil {
			t.Fatal(err)
		}
		for range 300 {
			s := randDecimalString(rng, integer)
			x, _ := new(big.Rat).SetString(s)
			want := (lo == nil || x.Cmp(lo) >= 0) && (hi == nil || x.Cmp(hi) <= 0)
			if x.Sign() == 0 && s[0] == '-' {
				continue // a negative zero: either answer is right
			}
			if got := c.Match([]byte(s)); got != want {
				t.Fatalf("integer %v, bounds %v..%v: %s matched %v, want %v", integer, lo, hi, s, got, want)
			}
		}
		for _, s := range []string{"00", "01", "-00", "1.", ".5", "0.5e1", "+1"} {
			if c.Match([]byte(s)) {
				t.Fatalf("bounds %v..%v: %q matched", lo, hi, s)
			}
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for in, want := range map[string]decimal{
		"0": {int: "0"}, "-0.0": {int: "0"}, "12.50": {int: "12", frac: "5"}, "1e3": {int: "1000"},
		"-2.5E-3": {neg: true, int: "0", frac: "0025"}, "0.000": {int: "0"}, "120e-1": {int: "12"},
	} {
		got, err := parseDecimal(json.Number(in))
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	if _, err := parseDecimal("1e999"); err == nil {
		t.Error("1e999: no error")
	}
}
