require ["imap4flags", "fileinto"];
addflag "\\Seen";
if hasflag :contains "\\seen" { fileinto "HasSeen"; }
if hasflag "\\Flagged" { fileinto "HasFlagged"; }
if hasflag :matches "\\S*" { fileinto "MatchS"; }
