package imapwire

// IDArgs are the arguments of ID (RFC 2971 3.3): the client's field-value pairs in the
// order sent, none for "ID NIL".
type IDArgs struct {
	Params []IDParam
}

// IDParam is one field-value pair of ID; Value is "" for NIL.
type IDParam struct {
	Field, Value string
}

// idArgs parses RFC 2971 4: id = "ID" SP id-params-list;
// id-params-list = "(" *(string SP nstring) ")" / nil. Pairs are separated by SP, as in the
// RFC's examples and every client.
func (p *parser) idArgs() *IDArgs {
	p.sp()
	args := &IDArgs{}
	if p.takeFold("NIL") {
		return args
	}
	p.expect('(')
	for p.ok() && !p.take(')') {
		if len(args.Params) > 0 {
			p.sp()
		}
		var param IDParam
		param.Field = p.str()
		p.sp()
		if !p.takeFold("NIL") {
			param.Value = p.str()
		}
		args.Params = append(args.Params, param)
	}
	return args
}
