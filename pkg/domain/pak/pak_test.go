package pak

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
)

const (
	vectorPAK  = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	vectorLong = "GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	vectorHash = "4c697273df3d764cba950bb5c04368097685f09259f5bd880d892cf1ff9f4cdd"
)

func TestHashVector(t *testing.T) {
	long, err := ParseHeader(vectorPAK)
	if err != nil {
		t.Fatal(err)
	}
	if long != vectorLong {
		t.Fatalf("long = %q", long)
	}
	if got := Hash(long); got != vectorHash {
		t.Fatalf("hash = %s, want %s", got, vectorHash)
	}
	if !IsHash(vectorHash) || IsHash(vectorHash[1:]) || IsHash(strings.Repeat("g", 64)) {
		t.Fatal("IsHash")
	}
}

func TestEqual(t *testing.T) {
	if !Equal(vectorHash, vectorHash) || Equal(vectorHash, Hash("x")) || Equal("", vectorHash) {
		t.Fatal("Equal")
	}
}

func TestParseHeader(t *testing.T) {
	ok := map[string]string{
		vectorPAK:                      vectorLong,
		"Bearer " + vectorPAK:          vectorLong,
		"bearer " + vectorPAK:          vectorLong,
		"BEARER   " + vectorPAK + "  ": vectorLong,
		" " + vectorPAK + "\t":         vectorLong,
		"x_y_" + vectorLong:            vectorLong, // prefix and short are never checked
		"my-co_BR.x_abc":               "abc",
	}
	for in, want := range ok {
		got, err := ParseHeader(in)
		if err != nil || got != want {
			t.Errorf("ParseHeader(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", " ", "Bearer", "Bearer ", "Bearer foo", "non_existent", "a_b_c_d", "_b_c", "a__c", "a_b_",
		"Bearer brokkr_BR3rVsDa", "brokkr BR_x_y", "a_b_c d", "a_b_0OIl", "a_b_é", "a_b\x00_c",
		"Bearer Bearer " + vectorPAK, "Basic " + vectorPAK, "a_b_" + strings.Repeat("z", MaxLen),
	}
	for _, in := range bad {
		if got, err := ParseHeader(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%q) = %q, %v; want ErrMalformed", in, got, err)
		}
	}
}

func TestGenerateFormat(t *testing.T) {
	for i := 0; i < 200; i++ {
		p, h, err := Generate(DefaultConfig, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(p, "_")
		if len(parts) != 3 || parts[0] != "brokkr" || len(parts[1]) != 8 || !strings.HasPrefix(parts[1], "BR") {
			t.Fatalf("bad PAK %q", p)
		}
		raw, err := base58.Decode(parts[2])
		if err != nil || len(raw) != 24 {
			t.Fatalf("long token %q decodes to %d bytes (%v)", parts[2], len(raw), err)
		}
		long, err := ParseHeader(p)
		if err != nil || long != parts[2] || Hash(long) != h {
			t.Fatalf("generated PAK does not round-trip: %q", p)
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	src := bytes.Repeat([]byte{0xff}, 8+24)
	p, h, err := Generate(DefaultConfig, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	wantShort := ("BR" + base58.Encode(src[:8]))[:8]
	wantLong := base58.Encode(src[8:])
	if p != "brokkr_"+wantShort+"_"+wantLong || h != Hash(wantLong) {
		t.Fatalf("got %q", p)
	}
	// A short reader is an error, not a weak key.
	if _, _, err := Generate(DefaultConfig, bytes.NewReader(src[:10])); err == nil {
		t.Fatal("want error on short random source")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Prefix: "", ShortTokenPrefix: "BR", ShortTokenLength: 8, LongTokenLength: 24},
		{Prefix: "a_b", ShortTokenPrefix: "BR", ShortTokenLength: 8, LongTokenLength: 24},
		{Prefix: "brokkr", ShortTokenPrefix: "B R", ShortTokenLength: 8, LongTokenLength: 24},
		{Prefix: "brokkr", ShortTokenPrefix: "BR", ShortTokenLength: 0, LongTokenLength: 24},
		{Prefix: "brokkr", ShortTokenPrefix: "BR", ShortTokenLength: 8, LongTokenLength: 4},
		{Prefix: "brokkr", ShortTokenPrefix: "BR", ShortTokenLength: 8, LongTokenLength: 1000},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v: want error", c)
		}
	}
	if err := DefaultConfig.Validate(); err != nil {
		t.Fatal(err)
	}
	// Every valid extreme still yields parseable PAKs.
	for _, c := range []Config{
		{Prefix: "p", ShortTokenLength: 1, LongTokenLength: 8},
		{Prefix: "brokkr", ShortTokenPrefix: "BRLONGPREFIX", ShortTokenLength: 4, LongTokenLength: 64},
		{Prefix: "brokkr", ShortTokenPrefix: "BR", ShortTokenLength: 64, LongTokenLength: 128},
	} {
		p, h, err := Generate(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if long, err := ParseHeader(p); err != nil || Hash(long) != h {
			t.Fatalf("%+v: %q does not parse: %v", c, p, err)
		}
	}
}

func TestIssuer(t *testing.T) {
	iss, err := NewIssuer(DefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	p, h, err := iss.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p) == p.Reveal() {
		t.Fatal("issued PAK prints in clear")
	}
	long, err := ParseHeader(p.Reveal())
	if err != nil || Hash(long) != h {
		t.Fatalf("issued PAK does not verify: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := iss.Issue(ctx); err == nil {
		t.Fatal("want error on cancelled context")
	}
	if _, err := NewIssuer(Config{}); err == nil {
		t.Fatal("want error on empty config")
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		vectorPAK, "Bearer " + vectorPAK, "bearer  " + vectorPAK, "x_y_z", "Bearer foo", "", "_", "__", "a_b_c_d",
		"brokkr_BR_", "Bearer", "bEaReR a_b_c", "a_b_c\n", "a_b_\xff", strings.Repeat("a_", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		long, err := ParseHeader(in)
		if err != nil {
			if long != "" {
				t.Fatalf("error with a token: %q", long)
			}
			return
		}
		if long == "" || len(long) > MaxLen || !isBase58(long) || !strings.Contains(in, long) {
			t.Fatalf("ParseHeader(%q) = %q", in, long)
		}
		// The token round-trips in every accepted shape.
		for _, again := range []string{"x_y_" + long, "Bearer x_y_" + long} {
			if got, err := ParseHeader(again); err != nil || got != long {
				t.Fatalf("round trip of %q via %q: %q, %v", long, again, got, err)
			}
		}
		if h := Hash(long); !IsHash(h) || !Equal(h, Hash(long)) {
			t.Fatalf("hash of %q", long)
		}
	})
}
