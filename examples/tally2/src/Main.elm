port module Main exposing (main)

{-| Version 2 of tally, with another model: the count and the last event.
Started by a migration from version 1, its init finds version 1's model in
its flags; started on its own, it counts from 0.

    event:    a string
    response: {"count": 2, "previous": <the event before>, "version": 2}
    flags:    {"migrated": {"count": 41}, "flags": ...} from a migration
              (a version 2 exports {"count", "last"}, which it takes too)

-}

import Json.Decode as Decode
import Json.Encode as Encode


port onEvent : (String -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


port elmboxExport : (Decode.Value -> msg) -> Sub msg


port elmboxExported : Encode.Value -> Cmd msg


type alias Model =
    { count : Int, last : String }


type Msg
    = Event String
    | Export


main : Program Decode.Value Model Msg
main =
    Platform.worker
        { init = init
        , update = update
        , subscriptions = \_ -> Sub.batch [ onEvent Event, elmboxExport (\_ -> Export) ]
        }


init : Decode.Value -> ( Model, Cmd Msg )
init flags =
    let
        migrated field decoder fallback =
            Decode.decodeValue (Decode.at [ "migrated", field ] decoder) flags
                |> Result.withDefault fallback
    in
    ( { count = migrated "count" Decode.int 0, last = migrated "last" Decode.string "" }
    , Cmd.none
    )


update : Msg -> Model -> ( Model, Cmd Msg )
update msg model =
    case msg of
        Event event ->
            ( { count = model.count + 1, last = event }
            , respond
                (Encode.object
                    [ ( "count", Encode.int (model.count + 1) )
                    , ( "previous", Encode.string model.last )
                    , ( "version", Encode.int 2 )
                    ]
                )
            )

        Export ->
            ( model
            , elmboxExported
                (Encode.object [ ( "count", Encode.int model.count ), ( "last", Encode.string model.last ) ])
            )
