package fakehttp_test

import (
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

type state struct {
	On   bool
	Name string
}

func TestUsersAddGetWrites(t *testing.T) {
	users := fakehttp.NewUsers(false, state{})
	if _, ok := users.Get("u1"); ok {
		t.Fatal("Get found a user in an empty table")
	}
	if n := users.Writes("u1"); n != 0 {
		t.Fatalf("Writes of an unknown user = %d, want 0", n)
	}
	users.Add("u1", state{Name: "a"})
	if st, ok := users.Get("u1"); !ok || st != (state{Name: "a"}) {
		t.Fatalf("Get = %+v, %v; want {Name:a}, true", st, ok)
	}
	users.Update("u1", true, func(st *state) { st.On = true })
	users.Add("u1", state{Name: "b"})
	if st, _ := users.Get("u1"); st != (state{Name: "b"}) || users.Writes("u1") != 0 {
		t.Fatalf("after a second Add: %+v with %d writes; want {Name:b} with 0", st, users.Writes("u1"))
	}
}

func TestUsersUpdate(t *testing.T) {
	users := fakehttp.NewUsers(false, state{Name: "fresh"})
	users.Add("u1", state{})

	st, ok := users.Update("u1", true, func(st *state) { st.On = !st.On })
	if !ok || !st.On || users.Writes("u1") != 1 {
		t.Fatalf("write: %+v, %v with %d writes; want On, true with 1", st, ok, users.Writes("u1"))
	}
	// A read: no fn, no write counted.
	st, ok = users.Update("u1", false, nil)
	if !ok || !st.On || users.Writes("u1") != 1 {
		t.Fatalf("read: %+v, %v with %d writes; want On, true with 1", st, ok, users.Writes("u1"))
	}
	// A write that changes nothing still counts: the fake processed it.
	users.Update("u1", true, nil)
	if n := users.Writes("u1"); n != 2 {
		t.Fatalf("Writes = %d, want 2", n)
	}
	// fn's verdict comes out through a variable it closes over.
	var refused bool
	users.Update("u1", true, func(st *state) { refused = st.On })
	if !refused {
		t.Fatal("fn did not see the current state")
	}

	ran := false
	if st, ok := users.Update("nobody", true, func(*state) { ran = true }); ok || ran || st != (state{}) {
		t.Fatalf("unknown user: %+v, %v, fn ran %v; want zero, false, false", st, ok, ran)
	}
	if _, ok := users.Get("nobody"); ok || users.Writes("nobody") != 0 {
		t.Fatal("Update created an unknown user without autoCreate")
	}
}

func TestUsersAutoCreate(t *testing.T) {
	users := fakehttp.NewUsers(true, state{Name: "fresh"})

	// A read creates the user, fresh, with no write.
	if st, ok := users.Update("r", false, nil); !ok || st != (state{Name: "fresh"}) {
		t.Fatalf("read: %+v, %v; want {Name:fresh}, true", st, ok)
	}
	if st, ok := users.Get("r"); !ok || st != (state{Name: "fresh"}) || users.Writes("r") != 0 {
		t.Fatalf("after a read: %+v, %v with %d writes; want {Name:fresh}, true with 0", st, ok, users.Writes("r"))
	}
	// A write sees the fresh state, and each new user gets its own copy.
	st, ok := users.Update("w", true, func(st *state) { st.On = true; st.Name += "!" })
	if !ok || st != (state{On: true, Name: "fresh!"}) || users.Writes("w") != 1 {
		t.Fatalf("write: %+v, %v with %d writes; want {On:true Name:fresh!}, true with 1", st, ok, users.Writes("w"))
	}
	if st, _ := users.Update("x", false, nil); st != (state{Name: "fresh"}) {
		t.Fatalf("a later user starts %+v, want {Name:fresh}", st)
	}
	// Get never creates.
	if _, ok := users.Get("g"); ok {
		t.Fatal("Get created a user")
	}
}

// TestUsersConcurrent is for -race, and checks that no write is lost.
func TestUsersConcurrent(t *testing.T) {
	users := fakehttp.NewUsers(true, 0)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				users.Update("u", true, func(n *int) { *n++ })
				users.Get("u")
				users.Writes("u")
			}
		}()
	}
	wg.Wait()
	if n, _ := users.Get("u"); n != workers*each || users.Writes("u") != workers*each {
		t.Fatalf("state %d with %d writes, want %d and %d", n, users.Writes("u"), workers*each, workers*each)
	}
}
