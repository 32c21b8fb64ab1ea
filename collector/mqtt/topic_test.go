package mqtt

import (
	"testing"
)

func TestTemplateMatch(t *testing.T) {
	tests := []struct {
		template, filter, topic string
		ok                      bool
		want                    [numSlots]string
	}{
		{"bms/{ups}/{string}/{module}", "bms/+/+/+", "bms/ups-a/1/07", true, [numSlots]string{"ups-a", "1", "07", "", ""}},
		{"bms/{ups}/{string}/{module}", "bms/+/+/+", "bms/ups-a/1", false, [numSlots]string{}},
		{"bms/{ups}/{string}/{module}", "bms/+/+/+", "bms/ups-a/1/2/3", false, [numSlots]string{}},
		{"bms/{ups}/{string}/{module}", "bms/+/+/+", "xyz/ups-a/1/2", false, [numSlots]string{}},
		{"site/+/{ups}/#", "site/+/+/#", "site/hall-1/ups-b/any/thing", true, [numSlots]string{"ups-b", "", "", "", ""}},
		{"site/+/{ups}/#", "site/+/+/#", "site/hall-1/ups-b", true, [numSlots]string{"ups-b", "", "", "", ""}},
		{"v/{ups}/{string}/{module}/{cell}/{metric}", "v/+/+/+/+/+", "v/a/1/2/3/cell_voltage_volts", true,
			[numSlots]string{"a", "1", "2", "3", "cell_voltage_volts"}},
		{"bms/{ups}/{string}", "bms/+/+", "bms/a/", true, [numSlots]string{"a", "", "", "", ""}},
		{"#", "#", "any/topic", true, [numSlots]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.template+" "+tt.topic, func(t *testing.T) {
			tmpl, err := ParseTemplate(tt.template)
			if err != nil {
				t.Fatal(err)
			}
			if f := tmpl.Filter(); f != tt.filter {
				t.Errorf("filter %q, want %q", f, tt.filter)
			}
			got, ok := tmpl.Match(tt.topic)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Match(%q) = %q, %v; want %q, %v", tt.topic, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBadTemplates(t *testing.T) {
	tests := []struct{ template, want string }{
		{"", "is empty"},
		{"bms/#/x", "has # before its last level"},
		{"bms/{rack}", "has an unknown placeholder {rack} (have {ups}, {string}, {module}, {cell}, {metric})"},
		{"bms/{ups}/{ups}", "binds {ups} twice"},
		{"bms/ups-{ups}", `level "ups-{ups}" mixes text with a wildcard or placeholder (a placeholder fills a whole level)`},
		{"$share/g/bms/{ups}", "must not carry the share prefix: set share_group instead"},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			_, err := ParseTemplate(tt.template)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
