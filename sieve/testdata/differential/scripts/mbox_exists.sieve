require ["mailbox", "fileinto"];
if mailboxexists "Lists" { fileinto "L"; }
if mailboxexists ["Lists", "Nope"] { fileinto "Both"; }
if mailboxexists "INBOX" { fileinto "I"; }
if mailboxexists "Archive/2024" { fileinto "A"; }
if mailboxexists "archive" { fileinto "CaseMatters"; }
