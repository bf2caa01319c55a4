require ["body", "fileinto"];
if body :contains "budget" { fileinto "Budget"; }
if body :contains "BUDGET" { fileinto "CaseBudget"; }
