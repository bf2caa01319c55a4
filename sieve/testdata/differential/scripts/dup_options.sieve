require ["duplicate", "fileinto"];
if duplicate :header "subject" :seconds 60 { discard; }
if duplicate :uniqueid "fixed" :handle "h" { discard; }
if not duplicate :last { fileinto "NotSeen"; }
