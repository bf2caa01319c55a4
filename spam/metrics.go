package spam

import "github.com/prometheus/client_golang/prometheus"

var (
	learnedDesc  = prometheus.NewDesc("strata_spam_learned_total", "Messages rspamd learnt from users' filing, by class.", []string{"class"}, nil)
	skippedDesc  = prometheus.NewDesc("strata_spam_learn_skipped_total", "Messages rspamd declined to learn (too few tokens, already learnt).", nil, nil)
	failedDesc   = prometheus.NewDesc("strata_spam_learn_failures_total", "Messages given up after their attempts or a permanent error.", nil, nil)
	retriesDesc  = prometheus.NewDesc("strata_spam_learn_retries_total", "Learn attempts that failed and were tried again.", nil, nil)
	droppedDesc  = prometheus.NewDesc("strata_spam_learn_dropped_total", "Messages not learnt because the queue was full or the learner stopping.", nil, nil)
	queuedDesc   = prometheus.NewDesc("strata_spam_learn_queued", "Messages waiting to be learnt.", nil, nil)
	checkedDesc  = prometheus.NewDesc("strata_spam_checks_total", "Verdicts received from rspamd at delivery.", nil, nil)
	checkErrDesc = prometheus.NewDesc("strata_spam_check_failures_total", "Deliveries rspamd gave no verdict for (delivered untested when fail-open, refused when fail-closed).", nil, nil)
)

// Describe implements prometheus.Collector.
func (l *Learner) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{learnedDesc, skippedDesc, failedDesc, retriesDesc, droppedDesc, queuedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (l *Learner) Collect(ch chan<- prometheus.Metric) {
	st := l.Stats()
	ch <- prometheus.MustNewConstMetric(learnedDesc, prometheus.CounterValue, float64(st.LearnedSpam), "spam")
	ch <- prometheus.MustNewConstMetric(learnedDesc, prometheus.CounterValue, float64(st.LearnedHam), "ham")
	ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(st.Skipped))
	ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(retriesDesc, prometheus.CounterValue, float64(st.Retries))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(st.Queued))
}

// Describe implements prometheus.Collector.
func (c *Checker) Describe(ch chan<- *prometheus.Desc) {
	ch <- checkedDesc
	ch <- checkErrDesc
}

// Collect implements prometheus.Collector.
func (c *Checker) Collect(ch chan<- prometheus.Metric) {
	st := c.Stats()
	ch <- prometheus.MustNewConstMetric(checkedDesc, prometheus.CounterValue, float64(st.Checked))
	ch <- prometheus.MustNewConstMetric(checkErrDesc, prometheus.CounterValue, float64(st.Failures))
}
