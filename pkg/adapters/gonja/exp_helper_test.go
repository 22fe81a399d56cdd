package gonja

import "github.com/brokkr-go/brokkr/pkg/domain/template"

func templateLimitsForExp() template.Limits { return template.Limits{} }
