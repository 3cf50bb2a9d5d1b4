package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gotasker/tasker"
)

// Input is the task input the template's input_schema describes.
type Input struct {
	DateRange DateRange `json:"date_range"`
}

// DateRange is the inclusive period the pipeline analyses.
type DateRange struct {
	Start string `json:"start_date"`
	End   string `json:"end_date"`
}

// days returns the dates of r, in order, or a permanent validation error.
func (r DateRange) days() ([]string, error) {
	start, err1 := time.Parse(time.DateOnly, r.Start)
	end, err2 := time.Parse(time.DateOnly, r.End)
	switch {
	case err1 != nil || err2 != nil:
		return nil, &tasker.StepError{Type: tasker.ErrorValidation, Code: "BAD_DATE",
			Message: fmt.Sprintf("date_range %s..%s: dates are YYYY-MM-DD", r.Start, r.End)}
	case end.Before(start) || end.Sub(start) > 366*24*time.Hour:
		return nil, &tasker.StepError{Type: tasker.ErrorValidation, Code: "BAD_DATE_RANGE",
			Message: fmt.Sprintf("date_range %s..%s: the end must be on or after the start, at most a year later", r.Start, r.End)}
	}
	var out []string
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out, nil
}

// Product is an item of the simulated catalogue.
type Product struct {
	SKU          string  `json:"sku"`
	UnitPrice    float64 `json:"unit_price"`
	OnHand       int     `json:"on_hand"`
	ReorderPoint int     `json:"reorder_point"`
}

// catalogue returns the simulated inventory system's products.
func catalogue() []Product {
	return []Product{
		{SKU: "widget", UnitPrice: 10, OnHand: 40, ReorderPoint: 50},
		{SKU: "gadget", UnitPrice: 25, OnHand: 120, ReorderPoint: 30},
		{SKU: "gizmo", UnitPrice: 99, OnHand: 5, ReorderPoint: 10},
	}
}

// Sale is one extracted sales record.
type Sale struct {
	Date      string  `json:"date"`
	SKU       string  `json:"sku"`
	Quantity  int     `json:"quantity"`
	UnitPrice float64 `json:"unit_price"`
}

// Extract is an extract step's result: where from and what.
type Extract[T any] struct {
	Source  string `json:"source"`
	Records []T    `json:"records"`
}

// Customer is one extracted customer record.
type Customer struct {
	ID            string  `json:"id"`
	LifetimeValue float64 `json:"lifetime_value"`
}

// source reads the extract step's handler.initialization source.
func source(step *tasker.StepContext) (string, error) {
	var init struct{ Source string }
	err := step.Initialization(&init)
	return init.Source, err
}

// extractSales simulates the sales database: on the i-th day of the range,
// i+1 widgets and 2 gadgets are sold (gizmos never).
func extractSales(_ context.Context, step *tasker.StepContext) (any, error) {
	var in Input
	if err := step.DecodeInput(&in); err != nil {
		return nil, err
	}
	days, err := in.DateRange.days()
	if err != nil {
		return nil, err
	}
	src, err := source(step)
	out := Extract[Sale]{Source: src}
	for i, d := range days {
		out.Records = append(out.Records, Sale{Date: d, SKU: "widget", Quantity: i + 1, UnitPrice: 10},
			Sale{Date: d, SKU: "gadget", Quantity: 2, UnitPrice: 25})
	}
	return out, err
}

// extractInventory reads the simulated inventory system.
func extractInventory(_ context.Context, step *tasker.StepContext) (any, error) {
	src, err := source(step)
	return Extract[Product]{Source: src, Records: catalogue()}, err
}

// extractCustomers reads the simulated CRM.
func extractCustomers(_ context.Context, step *tasker.StepContext) (any, error) {
	src, err := source(step)
	return Extract[Customer]{Source: src, Records: []Customer{
		{ID: "c1", LifetimeValue: 1500}, {ID: "c2", LifetimeValue: 420},
		{ID: "c3", LifetimeValue: 80}, {ID: "c4", LifetimeValue: 250},
	}}, err
}

// SalesSummary is transform_sales' result.
type SalesSummary struct {
	Days       int                `json:"days"`
	DailyTotal map[string]float64 `json:"daily_total"`
	ByProduct  map[string]float64 `json:"by_product"`
	Units      int                `json:"units"`
	Revenue    float64            `json:"revenue"`
	TopProduct string             `json:"top_product"`
}

// transformSales totals the extracted sales by day and by product.
func transformSales(_ context.Context, step *tasker.StepContext) (any, error) {
	var ex Extract[Sale]
	if err := step.DependencyResult("extract_sales_data", &ex); err != nil {
		return nil, err
	}
	s := SalesSummary{DailyTotal: map[string]float64{}, ByProduct: map[string]float64{}}
	for _, r := range ex.Records {
		amount := float64(r.Quantity) * r.UnitPrice
		s.DailyTotal[r.Date] += amount
		s.ByProduct[r.SKU] += amount
		s.Units += r.Quantity
		s.Revenue += amount
	}
	s.Days = len(s.DailyTotal)
	for sku, amount := range s.ByProduct {
		if amount > s.ByProduct[s.TopProduct] || amount == s.ByProduct[s.TopProduct] && sku < s.TopProduct {
			s.TopProduct = sku
		}
	}
	return s, nil
}

// StockReport is transform_inventory's result.
type StockReport struct {
	Units   int      `json:"units"`
	Reorder []string `json:"reorder"` // SKUs at or below their reorder point, sorted
}

// transformInventory finds the products to reorder.
func transformInventory(_ context.Context, step *tasker.StepContext) (any, error) {
	var ex Extract[Product]
	if err := step.DependencyResult("extract_inventory_data", &ex); err != nil {
		return nil, err
	}
	r := StockReport{Reorder: []string{}}
	for _, p := range ex.Records {
		r.Units += p.OnHand
		if p.OnHand <= p.ReorderPoint {
			r.Reorder = append(r.Reorder, p.SKU)
		}
	}
	slices.Sort(r.Reorder)
	return r, nil
}

// Segments is transform_customers' result.
type Segments struct {
	Customers        int            `json:"customers"`
	BySegment        map[string]int `json:"by_segment"`
	AvgLifetimeValue float64        `json:"avg_lifetime_value"`
}

// transformCustomers segments customers by lifetime value: vip from 1000,
// regular from 200, new below.
func transformCustomers(_ context.Context, step *tasker.StepContext) (any, error) {
	var ex Extract[Customer]
	if err := step.DependencyResult("extract_customer_data", &ex); err != nil {
		return nil, err
	}
	s := Segments{Customers: len(ex.Records), BySegment: map[string]int{}}
	for _, c := range ex.Records {
		switch {
		case c.LifetimeValue >= 1000:
			s.BySegment["vip"]++
		case c.LifetimeValue >= 200:
			s.BySegment["regular"]++
		default:
			s.BySegment["new"]++
		}
		s.AvgLifetimeValue += c.LifetimeValue / float64(len(ex.Records))
	}
	return s, nil
}

// Metrics is aggregate_metrics' result.
type Metrics struct {
	Period  string       `json:"period"`
	Sales   SalesSummary `json:"sales"`
	Stock   StockReport  `json:"stock"`
	Segment Segments     `json:"customers"`
}

// aggregateMetrics combines the three transforms.
func aggregateMetrics(_ context.Context, step *tasker.StepContext) (any, error) {
	var m Metrics
	var in Input
	for _, err := range []error{step.DecodeInput(&in), step.DependencyResult("transform_sales", &m.Sales),
		step.DependencyResult("transform_inventory", &m.Stock), step.DependencyResult("transform_customers", &m.Segment)} {
		if err != nil {
			return nil, err
		}
	}
	m.Period = in.DateRange.Start + ".." + in.DateRange.End
	return m, nil
}

// Insights is generate_insights' result.
type Insights struct {
	Period   string   `json:"period"`
	Insights []string `json:"insights"`
}

// generateInsights states what the metrics say.
func generateInsights(_ context.Context, step *tasker.StepContext) (any, error) {
	var m Metrics
	if err := step.DependencyResult("aggregate_metrics", &m); err != nil {
		return nil, err
	}
	vip := m.Segment.BySegment["vip"]
	return Insights{Period: m.Period, Insights: []string{
		fmt.Sprintf("revenue %.2f over %d days (%.2f a day), %d units; top product %s",
			m.Sales.Revenue, m.Sales.Days, m.Sales.Revenue/float64(m.Sales.Days), m.Sales.Units, m.Sales.TopProduct),
		fmt.Sprintf("%d products at or below their reorder point: %s", len(m.Stock.Reorder), strings.Join(m.Stock.Reorder, ", ")),
		fmt.Sprintf("%d of %d customers are VIP (%.0f%%); average lifetime value %.2f",
			vip, m.Segment.Customers, 100*float64(vip)/float64(m.Segment.Customers), m.Segment.AvgLifetimeValue),
	}}, nil
}
