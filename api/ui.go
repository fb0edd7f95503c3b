package api

func (s *Server) uiRoutes() []route { return nil }
