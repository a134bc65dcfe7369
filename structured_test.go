package medgemma

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/internal/schemagen"
	"github.com/medgemma/medgemma/internal/testenv"
)

// clinicalSchemas are hand-written schemas of the kind clinical
// applications ask for.
var clinicalSchemas = []string{
	`{"type":"object","properties":{"medications":{"type":"array","minItems":1,"maxItems":4,"items":{"type":"object","properties":{"name":{"type":"string","maxLength":24},"route":{"enum":["oral","iv","im","topical"]},"dose_mg":{"type":"number","minimum":0,"maximum":5000},"prn":{"type":"boolean"}},"required":["name","route","dose_mg"],"additionalProperties":false}}},"required":["medications"],"additionalProperties":false}`,
	`{"type":"object","properties":{"study_date":{"type":"string","format":"date"},"modality":{"enum":["CR","CT","MR","US"]},"findings":{"type":"array","items":{"type":"object","properties":{"location":{"type":"string","maxLength":30},"severity":{"type":"integer","minimum":0,"maximum":5}},"required":["location","severity"],"additionalProperties":false},"maxItems":3},"impression":{"type":"string","minLength":1,"maxLength":60},"urgent":{"type":"boolean"},"confidence":{"type":"number","minimum":0,"maximum":1},"follow_up":{"anyOf":[{"type":"null"},{"type":"string","pattern":"^(CT|MR|US) in [0-9]{1,2} (days|weeks)$"}]},"reader_id":{"type":"string","format":"uuid"}},"required":["study_date","modality","findings","impression","urgent","confidence","follow_up","reader_id"],"additionalProperties":false}`,
	`{"type":"object","properties":{"answer":{"enum":["yes","no","uncertain"]},"confidence":{"type":"integer","minimum":0,"maximum":100}},"required":["answer","confidence"],"additionalProperties":false}`,
	`{"type":"object","properties":{"heart_rate":{"type":"integer","minimum":20,"maximum":250},"bp":{"type":"string","pattern":"^[0-9]{2,3}/[0-9]{2,3}$"},"spo2":{"type":"integer","exclusiveMinimum":50,"maximum":100},"measured_at":{"type":"string","format":"date-time"},"notes":{"type":["string","null"],"maxLength":40}},"required":["heart_rate","bp","spo2","measured_at","notes"],"additionalProperties":false}`,
}

// TestStructuredAnswers: the tiny checkpoint, whose free answers are
// gibberish, answers 200 random schemas (every supported keyword) and the
// hand-written clinical ones, greedy and sampled with several seeds,
// batched by the scheduler: every answer that ends with stop parses and
// validates (santhosh-tekuri/jsonschema, formats asserted); every answer
// cut by max_tokens says length and is a prefix of a valid one.
func TestStructuredAnswers(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma-text")
	sched, err := NewScheduler(m, SchedulerOptions{Parallel: 8, Context: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	rng := rand.New(rand.NewPCG(21, 22))
	schemas := append([]string(nil), clinicalSchemas...)
	random := 200
	slow := testenv.Race || testenv.Purego
	if slow {
		random = 3 // scripts/test.sh runs this test once more, plain, with all 200
	}
	for range random {
		schemas = append(schemas, schemagen.Random(rng))
	}
	type job struct {
		schema string
		temp   float64
		seed   uint64
	}
	var jobs []job
	for i, s := range schemas {
		jobs = append(jobs, job{s, 0, 0})
		if slow {
			continue
		}
		jobs = append(jobs, job{s, 1, uint64(i)})
		if i < len(clinicalSchemas) {
			jobs = append(jobs, job{s, 1, uint64(100 + i)}, job{s, 1, uint64(200 + i)})
		}
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	work := make(chan job)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				reason, err := structuredAnswer(sched, j.schema, j.temp, j.seed)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				counts[reason]++
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if counts["stop"] < len(jobs)/2 {
		t.Errorf("only %d of %d answers ended: %v", counts["stop"], len(jobs), counts)
	}
	t.Logf("%d answers: %v", len(jobs), counts)
}

// structuredAnswer asks for one answer to schema and checks it.
func structuredAnswer(sched *Scheduler, schema string, temp float64, seed uint64) (string, error) {
	g, err := grammar.FromJSONSchema([]byte(schema))
	if err != nil {
		return "", fmt.Errorf("%s: %v", schema, err)
	}
	c, err := g.Compile()
	if err != nil {
		return "", fmt.Errorf("%s: %v", schema, err)
	}
	o := generate.Options{MaxNewTokens: 120, Temperature: temp, TopK: 64, Seed: seed, HasSeed: true, StopTokens: []int32{1, 106}, Grammar: c}
	msgs := []chat.Message{{Role: chat.RoleUser, Content: []chat.Part{chat.Text("Answer as JSON.")}}}
	res, err := sched.ChatN(context.Background(), msgs, ChatOptions{Generate: o}, 1, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %v", schema, err)
	}
	r := res[0]
	if !c.NewMatcher().Advance([]byte(r.Text)) {
		return "", fmt.Errorf("%s: answer %q is outside the grammar", schema, r.Text)
	}
	switch r.FinishReason {
	case generate.FinishLength:
		if len(r.Tokens) != o.MaxNewTokens {
			return "", fmt.Errorf("%s: length after %d tokens", schema, len(r.Tokens))
		}
	case generate.FinishStop:
		sch, err := schemagen.Validator(schema)
		if err != nil {
			return "", err
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(r.Text))
		if err != nil {
			return "", fmt.Errorf("%s: answer %q (stop) does not parse: %v", schema, r.Text, err)
		}
		if err := sch.Validate(inst); err != nil {
			return "", fmt.Errorf("%s: answer %q does not validate: %v", schema, r.Text, err)
		}
	default:
		return "", fmt.Errorf("%s: finish reason %q", schema, r.FinishReason)
	}
	return r.FinishReason, nil
}
