package main

import (
	"fmt"

	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/numbering"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
)

// tablesKey names the routing tables in the store.
const tablesKey = "routing"

// storedTables is the routing data as kept in bbolt. Trunk registration
// passwords are not in it (they are never written to disk by us): the
// registrations always come from the config file.
type storedTables struct {
	Numbering numbering.Spec `json:"numbering"`
	Interwork gateway.Spec   `json:"interwork"`
}

// loadTables builds the routing tables: from the config file when it
// declares any (they are then stored, replacing the stored ones, in one
// transaction), else the tables stored in the data directory, else empty
// tables (calls go to local subscribers only). Nothing is stored or
// swapped unless the whole set compiles.
func loadTables(cfg config.Config, db *store.DB, prev *routing.Tables) (*routing.Tables, string, error) {
	if cfg.HasRoutingTables() {
		st := storedTables{Numbering: cfg.NumberingSpec(), Interwork: cfg.InterworkSpec()}
		t, err := routing.Compile(st.Numbering, st.Interwork, prev)
		if err != nil {
			return nil, "", err
		}
		if err := db.PutTable(tablesKey, st); err != nil {
			return nil, "", fmt.Errorf("storing routing tables: %w", err)
		}
		return t, "config file", nil
	}
	var st storedTables
	found, err := db.GetTable(tablesKey, &st)
	if err != nil {
		return nil, "", fmt.Errorf("reading stored routing tables: %w", err)
	}
	if found {
		st.Interwork.Registrations = cfg.Registrations
		t, err := routing.Compile(st.Numbering, st.Interwork, prev)
		if err != nil {
			return nil, "", fmt.Errorf("stored routing tables: %w", err)
		}
		return t, "data directory", nil
	}
	t, err := routing.Compile(numbering.Spec{Settings: cfg.Numbering}, gateway.Spec{Registrations: cfg.Registrations}, prev)
	return t, "none (local subscribers only)", err
}
