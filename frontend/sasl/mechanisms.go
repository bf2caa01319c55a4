package sasl

import (
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/internal/scram"
)

// mechanisms is every SASL mechanism the frontends know, SCRAM (strongest first) before the
// mechanisms that send the credential itself: the order of the IMAP AUTH= capabilities and
// the ManageSieve SASL list. A mechanism is one row.
var mechanisms = []Mechanism{
	{Name: "SCRAM-SHA-256-PLUS", Offered: channelBindingOffered, Start: startScram(scram.SHA256, true)},     // RFC 7677, RFC 9266
	{Name: "SCRAM-SHA-256", Start: startScram(scram.SHA256, false)},                                         // RFC 7677
	{Name: "SCRAM-SHA-1-PLUS", Offered: sha1ChannelBindingOffered, Start: startScram(scram.SHA1, true)},     // RFC 5802
	{Name: "SCRAM-SHA-1", Offered: sha1Offered, Start: startScram(scram.SHA1, false)},                       // RFC 5802
	{Name: "PLAIN", Plaintext: true, Start: startPlain},                                                     // RFC 4616
	{Name: oauth.OAuthBearer, Plaintext: true, Offered: oauthOffered, Start: startOAuth(oauth.OAuthBearer)}, // RFC 7628
	{Name: oauth.XOAuth2, Plaintext: true, Offered: oauthOffered, Start: startOAuth(oauth.XOAuth2)},         // Google's XOAUTH2
}

func sha1Offered(c *Conn) bool { return c.ScramSHA1 }

func sha1ChannelBindingOffered(c *Conn) bool { return c.ScramSHA1 && channelBindingOffered(c) }
