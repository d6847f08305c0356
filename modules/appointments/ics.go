package appointments

import (
	"fmt"
	"time"

	ics "github.com/arran4/golang-ical"
)

// ICS writes an RFC 5545 calendar with one event for a confirmed appointment. Local times
// carry TZID=Europe/Paris (without a trailing Z, which RFC 5545 forbids with a TZID) and the
// VTIMEZONE is written by hand, since the library does not generate one.
func ICS(a *Appointment, place *Place, summary, description, url, host string, loc *time.Location, now time.Time) []byte {
	cal := ics.NewCalendar()
	cal.SetProductId("-//Parvis//Appointments//FR")
	cal.SetMethod(ics.MethodPublish)
	tz := loc.String()
	vtz := cal.AddTimezone(tz)
	if tz == "Europe/Paris" {
		// CET/CEST rules in force since 1996.
		d := &ics.Daylight{}
		d.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetfrom), "+0100")
		d.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetto), "+0200")
		d.SetProperty(ics.ComponentProperty(ics.PropertyTzname), "CEST")
		d.SetProperty(ics.ComponentPropertyDtStart, "19700329T020000")
		d.SetProperty(ics.ComponentPropertyRrule, "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")
		s := &ics.Standard{}
		s.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetfrom), "+0200")
		s.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetto), "+0100")
		s.SetProperty(ics.ComponentProperty(ics.PropertyTzname), "CET")
		s.SetProperty(ics.ComponentPropertyDtStart, "19701025T030000")
		s.SetProperty(ics.ComponentPropertyRrule, "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU")
		vtz.Components = append(vtz.Components, d, s)
	} else {
		// Other zones: a fixed offset taken at the appointment's date.
		_, off := a.Start.In(loc).Zone()
		s := &ics.Standard{}
		o := fmt.Sprintf("%+03d%02d", off/3600, (abs(off)%3600)/60)
		s.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetfrom), o)
		s.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetto), o)
		s.SetProperty(ics.ComponentPropertyDtStart, "19700101T000000")
		vtz.Components = append(vtz.Components, s)
	}
	ev := cal.AddEvent(a.Ref + "@" + host)
	ev.SetDtStampTime(now.UTC())
	ev.SetProperty(ics.ComponentPropertyDtStart, a.Start.In(loc).Format("20060102T150405"), ics.WithTZID(tz))
	ev.SetProperty(ics.ComponentPropertyDtEnd, a.End.In(loc).Format("20060102T150405"), ics.WithTZID(tz))
	ev.SetSummary(summary)
	ev.SetDescription(description)
	if place != nil {
		ev.SetLocation(place.Name + ", " + place.Address + ", " + place.ZipCode + " " + place.City)
		if place.Latitude != 0 || place.Longitude != 0 {
			ev.SetGeo(place.Latitude, place.Longitude)
		}
	}
	if url != "" {
		ev.SetURL(url)
	}
	if a.Status == StatusCancelled {
		ev.SetStatus(ics.ObjectStatusCancelled)
	} else {
		ev.SetStatus(ics.ObjectStatusConfirmed)
	}
	return []byte(cal.Serialize(ics.WithNewLineWindows))
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
