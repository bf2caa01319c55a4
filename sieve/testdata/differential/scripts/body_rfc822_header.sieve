# RFC 5173 5.2: :content "message/rfc822" tests the embedded message's header (its lines
# ending in CRLF, no blank line), not its body.
require ["body", "fileinto", "encoded-character"];
if body :content "message/rfc822" :contains "pineapple" { fileinto "RfcBody"; }
if body :content "message" :contains "Subject: original" { fileinto "MessageType"; }
if body :content "" :contains "To: forwarder" { fileinto "AnyType"; }
if body :content "message/rfc822" :matches "From: original@example.net*text/plain${hex:0D 0A}" { fileinto "WholeHeader"; }
if body :content "text" :contains "pineapple" { fileinto "TextInside"; }
