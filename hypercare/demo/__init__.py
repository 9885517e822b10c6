"""The demo ERP: a simulated finance ERP with ground-truth go-live faults, its HTTP API, and its builder."""
