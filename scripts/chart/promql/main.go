// SPDX-License-Identifier: Apache-2.0
// promql-check parses PromQL expressions with Prometheus's own parser, for
// scripts/chart-check.sh: the PrometheusRule the chart renders must load in
// Prometheus, and a syntax error would only show when the operator rejects it.
//
// Input on stdin: one JSON object per line, {"where": "...", "expr": "...",
// "for": "..."} ("for" may be empty). Output: one line per expression that
// does not parse, "where: error". Exit status 1 when any did not.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

type rule struct {
	Where string `json:"where"`
	Expr  string `json:"expr"`
	For   string `json:"for"`
}

func main() {
	bad, n := 0, 0
	// Default options: the functions and syntax every Prometheus 3 accepts,
	// no experimental ones.
	promql := parser.NewParser(parser.Options{})
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var r rule
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
			fmt.Printf("input line %d: %v\n", n+1, err)
			bad++
			continue
		}
		n++
		if _, err := promql.ParseExpr(r.Expr); err != nil {
			fmt.Printf("%s: expr: %v\n", r.Where, err)
			bad++
		}
		if r.For != "" {
			if _, err := model.ParseDuration(r.For); err != nil {
				fmt.Printf("%s: for: %v\n", r.Where, err)
				bad++
			}
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Printf("stdin: %v\n", err)
		bad++
	}
	if bad > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d expression(s) parse\n", n)
}
