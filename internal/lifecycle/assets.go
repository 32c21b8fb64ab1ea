package lifecycle

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// AssetHeader is the header an asset list must start with, exactly.
const AssetHeader = "ups,string,vendor,model,serial,chemistry,manufactured,installed,design_life_years,warranty_until,replace_by"

// Asset is one row of an asset list: what an asset-management system or
// a spreadsheet knows about a battery string (or, with String empty,
// every string of a UPS). Empty cells are zero.
type Asset struct {
	UPS, String, Vendor, Model, Serial string
	Chemistry                          inventory.Chemistry
	Manufactured, Installed            Date
	DesignLifeYears                    float64
	WarrantyUntil, ReplaceBy           Date
	// Source is "FILE:LINE" of the row.
	Source string
}

// LoadAssets reads the asset list at path; see ParseAssets.
func LoadAssets(path string) ([]Asset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read asset list: %w", err)
	}
	return ParseAssets(data, path)
}

// ParseAssets parses an asset list: UTF-8 CSV (an Excel byte-order mark is
// skipped), comma separated, the first line exactly AssetHeader, one row
// per battery string, lines starting with # ignored. ups is required and
// must be a valid identifier; every other cell may be empty. Dates are in
// any format ParseDate reads, or a spreadsheet serial day number
// (41897); chemistry is NMC, LFP, LTO or NCA; design_life_years is more
// than 0 and at most 50. A (ups, string) pair may appear once.
//
// Every problem of the file is reported, one per line, as
// "FILE:LINE: reason" (for example
// `assets.csv:4: installed "31/12/2014" is not a date in a known format ...`);
// then no rows are returned. Placeholder dates, dates in the future and
// manufactured after installed are not errors here: they are findings of
// the evaluation.
func ParseAssets(data []byte, source string) ([]Asset, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	var problems []string
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", source, line, fmt.Sprintf(format, args...)))
	}
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:1: empty file: the first line must be the header %s", source, AssetHeader)
	}
	if err != nil || strings.Join(header, ",") != AssetHeader {
		return nil, fmt.Errorf("%s:1: the first line must be exactly the header %s", source, AssetHeader)
	}
	type key struct{ ups, str string }
	first := map[key]int{}
	var out []Asset
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A quoting error spoils one record; the reader goes on at
			// the next line.
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			bad(pe.Line, "%v", pe.Err)
			continue
		}
		line, _ := r.FieldPos(0)
		if len(rec) != 11 {
			bad(line, "has %d fields, want 11 (%s)", len(rec), AssetHeader)
			continue
		}
		a, errs := parseAsset(rec)
		a.Source = fmt.Sprintf("%s:%d", source, line)
		for _, e := range errs {
			bad(line, "%s", e)
		}
		if len(errs) > 0 {
			continue
		}
		k := key{a.UPS, a.String}
		if l, dup := first[k]; dup {
			bad(line, "repeats line %d for ups %q string %q", l, a.UPS, a.String)
			continue
		}
		first[k] = line
		out = append(out, a)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return out, nil
}

// parseAsset decodes one record of 11 fields.
func parseAsset(rec []string) (Asset, []string) {
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	a := Asset{UPS: rec[0], String: rec[1], Vendor: rec[2], Model: rec[3], Serial: rec[4]}
	var errs []string
	switch {
	case a.UPS == "":
		errs = append(errs, "ups is required")
	case !telemetry.ValidUPS(a.UPS):
		errs = append(errs, fmt.Sprintf("ups %q must match [A-Za-z0-9_.:-]+", a.UPS))
	}
	if rec[5] != "" {
		c, ok := inventory.ParseChemistry(rec[5])
		if !ok {
			errs = append(errs, fmt.Sprintf("chemistry %q must be one of NMC, LFP, LTO, NCA", rec[5]))
		}
		a.Chemistry = c
	}
	date := func(name, s string, dst *Date) {
		if s == "" {
			return
		}
		d, err := ParseDate(s)
		if err != nil && digits(s) && len(s) <= 7 {
			d, err = ParseExcelSerial(s)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %q %v", name, s, err))
		}
		*dst = d
	}
	date("manufactured", rec[6], &a.Manufactured)
	date("installed", rec[7], &a.Installed)
	if rec[8] != "" {
		v, err := strconv.ParseFloat(rec[8], 64)
		if err != nil || !(v > 0 && v <= 50) {
			errs = append(errs, fmt.Sprintf("design_life_years %q must be a number more than 0 and at most 50", rec[8]))
		}
		a.DesignLifeYears = v
	}
	date("warranty_until", rec[9], &a.WarrantyUntil)
	date("replace_by", rec[10], &a.ReplaceBy)
	return a, errs
}
